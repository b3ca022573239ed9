using Sbp.Backends.Cuda;
using Sbp.PtxSim;

namespace Sbp.KernelProfile;

/// <summary>What one launch costs, counted on the simulator at a reduced shape and scaled by the launch's work.</summary>
public sealed record LaunchCost(double WarpInstructions, double UsefulBytes, double SectorBytes, string Sample);

/// <summary>
/// Counts a recorded launch without running it at full size (an interpreter would take hours for a Swin-T step):
/// the same kernel runs once on the PTX simulator through its <see cref="KernelRecipes"/> recipe at a reduced shape of
/// the same family (rows kept whole and fewer of them; fewer elements, outputs or kept positions), and the counts are
/// scaled by the ratio of work. Samples are cached by kernel and reduced shape.
/// </summary>
public sealed class LaunchSampler
{
    /// <summary>Elements a sample works on at most.</summary>
    public const int SampleElements = 1 << 16;

    readonly Dictionary<string, LaunchStats> _cache = new(StringComparer.Ordinal);
    readonly Dictionary<string, PtxModule> _modules = new(StringComparer.Ordinal);

    public int Simulated => _cache.Count;

    public LaunchCost Cost(RecordedLaunch launch)
    {
        if (launch.Entry is "strided_copy_f32" or "binary_f32" or "transpose_f32") return StridedCost(launch);
        var kernel = PtxKernels.All.First(k => k.Entry == launch.Entry);
        var size = new Dictionary<string, long>(StringComparer.Ordinal);
        for (int i = 0; i < kernel.Params.Length; i++)
            if (kernel.Params[i].Kind == CudaArgKind.Int32)
                size[kernel.Params[i].Name.StartsWith(launch.Entry + "_", StringComparison.Ordinal) ? kernel.Params[i].Name[(launch.Entry.Length + 1)..] : kernel.Params[i].Name] = (long)launch.Args[i].Bits;
        var (shape, dim, scale) = Reduced(launch.Entry, size);
        string key = $"{launch.Entry} [{string.Join(',', shape)}] dim {dim}";
        if (!_cache.TryGetValue(key, out var stats)) _cache[key] = stats = Simulate(launch.Entry, shape, dim);
        return new LaunchCost(stats.WarpInstructions * scale, (stats.BytesLoaded + stats.BytesStored) * scale, 32.0 * stats.GlobalTransactions * scale, key);
    }

    /// <summary>The reduced recipe shape (and axis) for a launch, and real work / sampled work.</summary>
    static (int[] Shape, int Dim, double Scale) Reduced(string entry, Dictionary<string, long> s)
    {
        const long S = SampleElements;
        long Get(string name) => s.TryGetValue(name, out long v) ? Math.Max(v, 1) : 1;
        if (entry == "clip_coef_f32") return ([1], 0, 1);
        if (entry == "layer_norm_bwd_params_f32") return ([(int)Get("parts"), (int)Get("cols")], 1, 1);
        if (s.ContainsKey("rows") && (s.ContainsKey("cols") || s.ContainsKey("classes")))
        {
            long rows = Get("rows"), cols = s.ContainsKey("cols") ? Get("cols") : Get("classes");
            long r = Math.Clamp(S / cols, 1, rows);
            return ([(int)r, (int)cols], 1, (double)rows / r);
        }
        if (s.ContainsKey("nidx"))
        {
            long outer = Get("outer"), nidx = Get("nidx"), inner = Get("inner");
            long n = Math.Clamp(S / inner, 1, nidx), o = Math.Clamp(S / (n * inner), 1, outer);
            return ([(int)o, (int)(2 * n), (int)inner], 1, (double)outer * nidx / (o * n));
        }
        if (s.ContainsKey("nout"))
        {
            long nout = Get("nout"), nred = Get("nred");
            long r = Math.Min(nred, S), o = Math.Clamp(S / r, 1, nout);
            return ([(int)o, (int)r], 1, (double)nout * nred / (o * r));
        }
        if (s.ContainsKey("planes"))
        {
            long planes = Get("planes"), volume = Get("t") * Get("h") * Get("w");
            long p = Math.Clamp(S / volume, 1, planes);
            return ([(int)p, (int)Get("t"), (int)Get("h"), (int)Get("w")], 1, (double)planes / p);
        }
        long all = Get("n");
        if (entry == "max_pool3d_bwd_f32")
        {
            long m = Math.Min(all, S / 8);
            return ([(int)m, 2, 2, 2], 1, (double)all / m);
        }
        long k = Math.Min(all, S);
        return ([(int)k], 0, (double)all / k);
    }

    /// <summary>A strided launch sampled with its own axes and strides (<see cref="StridedSample"/>).</summary>
    LaunchCost StridedCost(RecordedLaunch launch)
    {
        var memory = new SimMemory();
        var (grid, block, args, scale, key, allocations) = StridedSample.Build(launch, memory);
        if (!_cache.TryGetValue(key, out var stats))
            _cache[key] = stats = new PtxSimulator(memory).Launch(Module(launch.Entry), launch.Entry, new Dim3(grid), new Dim3(block), 0, args);
        foreach (var a in allocations) memory.Free(a);
        return new LaunchCost(stats.WarpInstructions * scale, (stats.BytesLoaded + stats.BytesStored) * scale, 32.0 * stats.GlobalTransactions * scale, key);
    }

    PtxModule Module(string entry)
    {
        string module = PtxLibrary.ModuleOf(entry);
        if (!_modules.TryGetValue(module, out var parsed))
            _modules[module] = parsed = PtxModule.Parse(PtxLibrary.ModuleText(module), $"kernels/{module}.ptx");
        return parsed;
    }

    LaunchStats Simulate(string entry, int[] shape, int dim)
    {
        var parsed = Module(entry);
        var memory = new SimMemory();
        var recipes = new KernelRecipes(memory, 1, shape, dim, 256);
        var launch = recipes.Build(entry);
        var stats = new PtxSimulator(memory).Launch(parsed, entry, new Dim3(launch.Grid), new Dim3(launch.Block), launch.SharedBytes, launch.Args);
        foreach (var a in recipes.Allocations) memory.Free(a);
        return stats;
    }
}
