using System.Diagnostics;
using System.Globalization;
using Sbp.Backends.Cuda;
using Sbp.PtxSim;

namespace Sbp.KernelProfile;

/// <summary>
/// What <c>sbp kernels list</c> and <c>sbp kernels profile ENTRY --shape d0,d1,... [--dim D] [--block N] [--seed S]</c> do:
/// the list, and one launch of a kernel of kernels/*.ptx once on the PTX simulator with random inputs of that shape and
/// prints its launch statistics (instructions by kind, global bytes, sectors per request, shared
/// memory requests and bank conflicts).
/// </summary>
public static class KernelProfiler
{
    public static int List(TextWriter o)
    {
        foreach (var module in PtxLibrary.Modules)
        {
            o.WriteLine($"kernels/{module}.ptx");
            foreach (var entry in PtxLibrary.EntriesOf(module)) o.WriteLine($"  {entry}");
        }
        return 0;
    }

    public static int Profile(string entry, string shapeText, int? dimOption, uint block, int seed, TextWriter o)
    {
        if (!PtxLibrary.Modules.SelectMany(PtxLibrary.EntriesOf).Contains(entry))
            throw new ArgumentException($"kernel entry '{entry}' is not a kernel; `sbp kernels list` lists them.");
        var shape = ParseShape(shapeText);
        if (block is 0 or > 1024 || block % 32 != 0) throw new ArgumentException($"--block {block}: use a multiple of 32 between 32 and 1024.");
        string module = PtxLibrary.ModuleOf(entry);
        if (!KernelRecipes.Known.Contains(entry)) throw new InvalidOperationException($"no launch recipe for '{entry}' (add one in kernels/Sbp.KernelProfile/KernelRecipes.cs).");
        int dim = dimOption ?? (shape.Length > 1 ? 1 : 0);

        var memory = new SimMemory();
        var recipes = new KernelRecipes(memory, seed, shape, dim, block);
        var launch = recipes.Build(entry);
        var parsed = PtxModule.Parse(PtxLibrary.ModuleText(module), $"kernels/{module}.ptx");
        var simulator = new PtxSimulator(memory);
        var clock = Stopwatch.StartNew();
        var stats = simulator.Launch(parsed, entry, new Dim3(launch.Grid), new Dim3(launch.Block), launch.SharedBytes, launch.Args);
        clock.Stop();
        foreach (var a in recipes.Allocations) memory.Free(a);

        o.WriteLine($"{entry} (kernels/{module}.ptx), shape [{string.Join(", ", shape)}]: {launch.Note}");
        o.WriteLine($"launch: grid {launch.Grid}, block {launch.Block}, dynamic shared {launch.SharedBytes} B; simulated in {clock.Elapsed.TotalMilliseconds:F0} ms");
        o.Write(stats.ToString());
        o.WriteLine("  (sectors per request: 4 = a warp's coalesced 4-byte accesses, 16 = coalesced 16-byte accesses, 1 = a broadcast, 32 = scattered)");
        return 0;
    }

    static int[] ParseShape(string text)
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        var dims = new int[parts.Length];
        const long Most = 1 << 24;   // the simulator is an interpreter
        for (int i = 0; i < parts.Length; i++)
            if (!int.TryParse(parts[i], NumberStyles.None, CultureInfo.InvariantCulture, out dims[i]) || dims[i] <= 0 || dims[i] > Most)
                throw new ArgumentException($"--shape '{text}': give sizes from 1 to {Most} separated by commas, e.g. --shape 8,64,128.");
        if (dims.Length == 0) throw new ArgumentException($"--shape '{text}': give sizes from 1 to {Most} separated by commas, e.g. --shape 8,64,128.");
        long numel = 1;
        foreach (int d in dims) numel = Math.Min(numel * d, Most + 1);   // capped: never overflows
        if (numel > Most) throw new ArgumentException($"--shape '{text}' has more than {Most} elements; the simulator is an interpreter: keep it at most 16M (a few hundred thousand runs in seconds).");
        return dims;
    }
}
