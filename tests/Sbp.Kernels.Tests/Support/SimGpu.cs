using System.Collections.Concurrent;
using Sbp.Backends.Cuda;
using Sbp.PtxSim;

namespace Sbp.Kernels.Tests.Support;

/// <summary>
/// A simulated GPU for one test: global memory, the PTX simulator, and the engine's embedded kernel
/// modules (parsed once per process). Every allocation is freed on dispose.
/// </summary>
public sealed class SimGpu : IDisposable
{
    static readonly ConcurrentDictionary<string, PtxModule> Parsed = new(StringComparer.Ordinal);
    readonly List<ulong> _live = [];

    public SimGpu() => Simulator = new PtxSimulator(Memory);

    public SimMemory Memory { get; } = new();
    public PtxSimulator Simulator { get; }

    /// <summary>The statistics of the last launch.</summary>
    public LaunchStats? Last { get; private set; }

    /// <summary>A module of kernels/*.ptx, parsed with its file name as the source name.</summary>
    public static PtxModule Module(string module) =>
        Parsed.GetOrAdd(module, m => PtxModule.Parse(PtxLibrary.ModuleText(m), $"kernels/{m}.ptx"));

    public ulong Alloc(long bytes)
    {
        ulong a = Memory.Allocate(Math.Max(bytes, 4));
        _live.Add(a);
        return a;
    }

    public ulong Upload(float[] data)
    {
        ulong a = Alloc(4L * data.Length);
        Memory.Write<float>(a, data);
        return a;
    }

    public ulong Upload(int[] data)
    {
        ulong a = Alloc(4L * data.Length);
        Memory.Write<int>(a, data);
        return a;
    }

    /// <summary>n floats of 0.</summary>
    public ulong Zeros(int n) => Upload(new float[n]);

    /// <summary>n floats of NaN: outputs start poisoned, so an element a kernel forgets to write shows.</summary>
    public ulong Poisoned(int n)
    {
        var a = new float[n];
        Array.Fill(a, float.NaN);
        return Upload(a);
    }

    public float[] Download(ulong address, int count)
    {
        var a = new float[count];
        Memory.Read<float>(address, a);
        return a;
    }

    public LaunchStats Launch(string entry, uint grid, uint block, params KernelArg[] args) =>
        Launch(entry, grid, block, 0, args);

    public LaunchStats Launch(string entry, uint grid, uint block, uint sharedBytes, params KernelArg[] args)
    {
        var module = Module(PtxLibrary.ModuleOf(entry));
        Last = Simulator.Launch(module, entry, new Dim3(grid), new Dim3(block), sharedBytes, args);
        return Last;
    }

    /// <summary>Blocks for n work items: ceil(n / block), capped (a small cap exercises the grid-stride loops).</summary>
    public static uint Grid(long n, uint block, uint maxBlocks = 4) =>
        (uint)Math.Clamp((n + block - 1) / block, 1, maxBlocks);

    public void Dispose()
    {
        foreach (var a in _live) Memory.Free(a);
        _live.Clear();
    }
}
