using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using TorchSharp;

namespace Sbp.Tools.ReferenceFixtures;

/// <summary>
/// Entry point: <c>--out DIR</c> (default tests/Sbp.Models.Tests/Fixtures/Reference) and optional <c>--case NAME</c>
/// (repeatable) to write only some cases. Exits non-zero when a self-check fails.
/// </summary>
internal static partial class Program
{
    static int Main(string[] args)
    {
        string outDir = Path.Combine("tests", "Sbp.Models.Tests", "Fixtures", "Reference");
        var only = new List<string>();
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--out" when i + 1 < args.Length: outDir = args[++i]; break;
                case "--case" when i + 1 < args.Length: only.Add(args[++i]); break;
                default:
                    Console.Error.WriteLine($"unknown argument '{args[i]}'; usage: [--out DIR] [--case NAME]...");
                    return 2;
            }
        }
        var unknown = only.Where(n => Cases.All.All(c => c.Name != n)).ToList();
        if (unknown.Count > 0)
        {
            Console.Error.WriteLine($"unknown case(s) {string.Join(", ", unknown)}; known: {string.Join(", ", Cases.All.Select(c => c.Name))}");
            return 2;
        }

        // Before anything loads libtorch: Debian 12's libstdc++ lacks GLIBCXX_3.4.32, which TorchSharp's native
        // library asks for only for one symbol; make that need weak (see ElfWeakVersion).
        ElfWeakVersion.PatchUnder(AppContext.BaseDirectory, "libLibTorchSharp.so", "GLIBCXX_3.4.32");
        LimitOneDnnIsa();
        return Generate(outDir, only);
    }

    /// <summary>
    /// On the AMD EPYC (family 26) machine this was written on, libtorch 2.10's oneDNN returned wrong float32
    /// convolution results (forward for some shapes, input gradients for others, NaNs) with its AVX-512 and also its
    /// AVX2 JIT kernels, deterministically; float64 does not use oneDNN and was right, and so were the SSE4.1
    /// kernels. So oneDNN is capped at SSE4.1 (only slower; the models are tiny). The variable is read from the
    /// native environment when oneDNN first runs, hence setenv (Environment.SetEnvironmentVariable does not reach
    /// native code on Linux). An explicit ONEDNN_MAX_CPU_ISA is respected. The float64 cross-check in FixtureRunner
    /// fails the run if a kernel is still wrong.
    /// </summary>
    static void LimitOneDnnIsa()
    {
        if (!OperatingSystem.IsLinux() || Environment.GetEnvironmentVariable("ONEDNN_MAX_CPU_ISA") is not null) return;
        if (SetEnv("ONEDNN_MAX_CPU_ISA", "SSE41", 0) != 0) throw new InvalidOperationException("setenv failed");
        Console.WriteLine("[onednn] ONEDNN_MAX_CPU_ISA=SSE41");
    }

    [LibraryImport("libc", EntryPoint = "setenv", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int SetEnv(string name, string value, int overwrite);

    /// <summary>Kept out of Main so no TorchSharp code runs before the native library is patched.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    static int Generate(string outDir, List<string> only)
    {
        NativeStderrFilter.Start(line => line.Contains("Could not initialize NNPACK!", StringComparison.Ordinal));
        torch.set_num_threads(1);   // one thread: reductions in a fixed order, so reruns give the same bits
        long total = 0;
        int written = 0;
        string? failure = null;
        try
        {
            foreach (var c in Cases.All.Where(c => only.Count == 0 || only.Contains(c.Name)))
            {
                total += FixtureRunner.Run(c, outDir);
                written++;
            }
        }
        catch (InvalidOperationException e)
        {
            failure = e.Message;
        }
        finally
        {
            NativeStderrFilter.Stop();
        }
        if (failure is not null)
        {
            Console.Error.WriteLine($"self-check failed: {failure}");
            return 1;
        }
        Console.WriteLine($"{written} fixture files, {total} bytes in all, under {outDir}");
        return 0;
    }
}
