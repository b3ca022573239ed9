using System.Runtime.InteropServices;
using System.Runtime.CompilerServices;
using Sbp.Backends;
using Sbp.Backends.Cpu;
using Sbp.Tensors;

namespace Sbp.Benchmarks.Quick;

/// <summary>
/// SGEMM GFLOP/s, ours against OpenBLAS: square sizes on one and on all threads, then the model's
/// shapes (linear forward and backward, batched attention products; OpenBLAS loops over the batch)
/// on all threads.
/// </summary>
public sealed unsafe class GemmRows(params int[] sizes) : IQuickRowProducer
{
    public string Name => "sgemm";

    public IEnumerable<QuickRow> Run(QuickOptions options, IList<string> notes)
    {
        bool blas = OpenBlas.TryLoad(out string note);
        if (!blas) notes.Add(note);
        else notes.Add($"OpenBLAS: {OpenBlas.Description}");
        var device = Device.CreateCpu("bench-gemm");
        var backend = CpuBackend.Instance;
        int saved = backend.GemmThreads;
        var rows = new List<QuickRow>();
        try
        {
            foreach (int threads in options.AllThreads > 1 ? new[] { 1, options.AllThreads } : [1])
                foreach (int n in sizes)
                {
                    using var a = Tensor.FromArray(Data(1, n * n), new Shape(n, n), device);
                    using var b = Tensor.FromArray(Data(2, n * n), new Shape(n, n), device);
                    using var c = Tensor.Zeros(new Shape(n, n), device);
                    double flops = 2.0 * n * n * n;
                    backend.GemmThreads = threads;
                    var spec = new GemmSpec(false, false, n, n, n);
                    double ours = flops / Timing.Best(() => backend.Gemm(spec, a, b, c), options.MinSecondsPerCase) / 1e9;
                    double? theirs = null;
                    if (blas)
                    {
                        OpenBlas.SetThreads(threads);
                        float* pa = Data(a), pb = Data(b), pc = Data(c);
                        theirs = flops / Timing.Best(() => OpenBlas.Sgemm(false, false, n, n, n, 1f, pa, pb, 0f, pc), options.MinSecondsPerCase) / 1e9;
                    }
                    rows.Add(new QuickRow("sgemm", $"{n}x{n}x{n} NN, {threads} thread{(threads == 1 ? "" : "s")}", ours, "GFLOP/s",
                        theirs, blas ? "OpenBLAS" : null));
                }
            backend.GemmThreads = options.AllThreads;
            if (blas) OpenBlas.SetThreads(options.AllThreads);
            foreach (var (name, g) in ModelShapes) rows.Add(Shape(name, g, device, blas, options));
        }
        finally
        {
            backend.GemmThreads = saved;
        }
        return rows;
    }

    /// <summary>Video Swin-like products: 25088 tokens of width 96, MLP 4x; window attention 392 tokens, head dim 32; swin-micro's narrow first stage.</summary>
    static readonly (string Name, GemmSpec Spec)[] ModelShapes =
    [
        ("linear fwd x W^T 25088x384x96 NT", new GemmSpec(false, true, 25088, 384, 96)),
        ("linear dX dY W 25088x96x384 NN", new GemmSpec(false, false, 25088, 96, 384)),
        ("linear dW dY^T X 384x96x25088 TN", new GemmSpec(true, false, 384, 96, 25088)),
        ("attention Q K^T 96 x 392x392x32 NT", new GemmSpec(false, true, 392, 392, 32, Batch: 96, StrideA: 392 * 32, StrideB: 392 * 32, StrideC: 392 * 392)),
        ("attention P V 96 x 392x32x392 NN", new GemmSpec(false, false, 392, 32, 392, Batch: 96, StrideA: 392 * 392, StrideB: 392 * 32, StrideC: 392 * 32)),
        // swin-micro's first stage (the sbp-step rows): 32768 tokens of width 24, MLP 4x.
        ("swin-micro fc1 fwd 32768x96x24 NT", new GemmSpec(false, true, 32768, 96, 24)),
        ("swin-micro fc2 fwd 32768x24x96 NT", new GemmSpec(false, true, 32768, 24, 96)),
        ("swin-micro fc2 dX 32768x96x24 NN", new GemmSpec(false, false, 32768, 96, 24)),
        ("swin-micro fc1 dW 96x24x32768 TN", new GemmSpec(true, false, 96, 24, 32768)),
        ("swin-micro qkv dW 24x24x32768 TN", new GemmSpec(true, false, 24, 24, 32768)),
    ];

    /// <summary>The address of a CPU tensor's elements for OpenBLAS: pool memory is native and never moves.</summary>
    static float* Data(Tensor t) => (float*)Unsafe.AsPointer(ref MemoryMarshal.GetReference(t.AsSpan()));

    static QuickRow Shape(string name, GemmSpec g, Device device, bool blas, QuickOptions options)
    {
        long sa = g.Batch == 1 ? (long)g.M * g.K : g.StrideA, sb = g.Batch == 1 ? (long)g.K * g.N : g.StrideB, sc = g.Batch == 1 ? (long)g.M * g.N : g.StrideC;
        using var a = Tensor.FromArray(Data(3, checked((int)(sa * g.Batch))), new Shape(checked((int)(sa * g.Batch))), device);
        using var b = Tensor.FromArray(Data(4, checked((int)(sb * g.Batch))), new Shape(checked((int)(sb * g.Batch))), device);
        using var c = Tensor.Zeros(new Shape(checked((int)(sc * g.Batch))), device);
        double flops = 2.0 * g.M * g.N * g.K * g.Batch;
        var backend = CpuBackend.Instance;
        double ours = flops / Timing.Best(() => backend.Gemm(g, a, b, c), options.MinSecondsPerCase / 2) / 1e9;
        double? theirs = null;
        if (blas)
        {
            float* pa = Data(a), pb = Data(b), pc = Data(c);
            theirs = flops / Timing.Best(() =>
            {
                for (int e = 0; e < g.Batch; e++)
                    OpenBlas.Sgemm(g.TransA, g.TransB, g.M, g.N, g.K, 1f, pa + e * sa, pb + e * sb, 0f, pc + e * sc);
            }, options.MinSecondsPerCase / 2) / 1e9;
        }
        return new QuickRow("sgemm", $"{name}, {options.AllThreads} threads", ours, "GFLOP/s", theirs, blas ? "OpenBLAS" : null);
    }

    static float[] Data(int seed, int count)
    {
        var r = new Random(seed);
        var x = new float[count];
        for (int i = 0; i < count; i++) x[i] = (float)(r.NextDouble() * 2 - 1);
        return x;
    }
}
