using System.Diagnostics;
using System.Globalization;
using Sbp.Backends.Cuda;
using Sbp.PtxSim;

namespace Sbp.Models.Kernels;

/// <summary>
/// <c>sbp kernels list</c> and <c>sbp kernels profile ENTRY --shape d0,d1,... [--dim D] [--block N] [--seed S]</c>:
/// runs one kernel of kernels/*.ptx once on the PTX simulator with random inputs of that shape and
/// prints its launch statistics (instructions by kind, global bytes, sectors per request, shared
/// memory requests and bank conflicts).
/// </summary>
static class KernelCommand
{
    const string Usage =
        "usage: sbp kernels list\n" +
        "       sbp kernels profile ENTRY --shape d0,d1,... [--dim D] [--block N] [--seed S]\n" +
        "  elementwise kernels, optimizers and sum_f32 use all elements of the shape; row kernels (softmax, layer norm,\n" +
        "  cross-entropy, sum_rows/cols) read it as [rows, last dim]; the SBP kernels (gather/scatter_add) read it as\n" +
        "  [outer, N, inner] along --dim (default 1, or 0 for rank 1) and keep every other position along N.";

    public static int Run(string[] args)
    {
        try
        {
            return args.Length switch
            {
                0 => Fail("missing subcommand"),
                _ when args[0] == "list" => List(),
                _ when args[0] == "profile" => Profile(args[1..]),
                _ when args[0] is "-h" or "--help" or "help" => Help(),
                _ => Fail($"unknown subcommand '{args[0]}'"),
            };
        }
        catch (Exception e) when (e is ArgumentException or KeyNotFoundException or FormatException or OverflowException or PtxSimException)
        {
            Console.Error.WriteLine($"sbp kernels: {e.Message}");
            return 2;
        }
    }

    static int Help()
    {
        Console.WriteLine(Usage);
        return 0;
    }

    static int Fail(string message)
    {
        Console.Error.WriteLine($"sbp kernels: {message}");
        Console.Error.WriteLine(Usage);
        return 2;
    }

    static int List()
    {
        foreach (var module in PtxLibrary.Modules)
        {
            Console.WriteLine($"kernels/{module}.ptx");
            foreach (var entry in PtxLibrary.EntriesOf(module)) Console.WriteLine($"  {entry}");
        }
        return 0;
    }

    static int Profile(string[] args)
    {
        if (args.Length == 0 || args[0].StartsWith('-')) return Fail("profile needs a kernel entry name (see `sbp kernels list`)");
        string entry = args[0];
        int[]? shape = null;
        int dim = int.MinValue, seed = 1;
        uint block = 256;
        for (int i = 1; i < args.Length; i++)
        {
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            switch (args[i])
            {
                case "--shape": shape = ParseShape(Value()); break;
                case "--dim": dim = int.Parse(Value(), CultureInfo.InvariantCulture); break;
                case "--block": block = uint.Parse(Value(), CultureInfo.InvariantCulture); break;
                case "--seed": seed = int.Parse(Value(), CultureInfo.InvariantCulture); break;
                default: return Fail($"unknown option '{args[i]}'");
            }
        }
        if (shape is null) return Fail("profile needs --shape d0,d1,...");
        if (block is 0 or > 1024 || block % 32 != 0) return Fail($"--block {block}: use a multiple of 32 between 32 and 1024");
        string module = PtxLibrary.ModuleOf(entry);   // a clear error for an unknown name
        if (!KernelRecipes.Known.Contains(entry)) return Fail($"no launch recipe for '{entry}' yet (add one in models/Kernels/KernelRecipes.cs)");
        if (dim == int.MinValue) dim = shape.Length > 1 ? 1 : 0;

        var memory = new SimMemory();
        var recipes = new KernelRecipes(memory, seed, shape, dim, block);
        var launch = recipes.Build(entry);
        var parsed = PtxModule.Parse(PtxLibrary.ModuleText(module), $"kernels/{module}.ptx");
        var simulator = new PtxSimulator(memory);
        var clock = Stopwatch.StartNew();
        var stats = simulator.Launch(parsed, entry, new Dim3(launch.Grid), new Dim3(launch.Block), launch.SharedBytes, launch.Args);
        clock.Stop();
        foreach (var a in recipes.Allocations) memory.Free(a);

        Console.WriteLine($"{entry} (kernels/{module}.ptx), shape [{string.Join(", ", shape)}]: {launch.Note}");
        Console.WriteLine($"launch: grid {launch.Grid}, block {launch.Block}, dynamic shared {launch.SharedBytes} B; simulated in {clock.Elapsed.TotalMilliseconds:F0} ms");
        Console.Write(stats.ToString());
        Console.WriteLine("  (sectors per request: 4 = a warp's coalesced 4-byte accesses, 16 = coalesced 16-byte accesses, 1 = a broadcast, 32 = scattered)");
        return 0;
    }

    static int[] ParseShape(string text)
    {
        var dims = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
            .Select(s => int.Parse(s, NumberStyles.None, CultureInfo.InvariantCulture)).ToArray();
        if (dims.Length == 0 || dims.Any(d => d <= 0)) throw new ArgumentException($"--shape '{text}': give positive sizes, e.g. --shape 8,64,128");
        long numel = dims.Aggregate(1L, (p, d) => checked(p * d));
        if (numel > 1 << 24) throw new ArgumentException($"--shape '{text}' has {numel} elements; the simulator is an interpreter: keep it at most 16M (a few hundred thousand runs in seconds)");
        return dims;
    }
}
