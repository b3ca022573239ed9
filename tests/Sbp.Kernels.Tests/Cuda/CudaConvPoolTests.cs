using Sbp.Backends;
using Sbp.Backends.Cuda;
using Sbp.CudaSim;
using Sbp.Tensors;

namespace Sbp.Kernels.Tests.Cuda;

/// <summary>Convolutions (cuDNN descriptors, reference cuDNN on the simulator) and pooling on CUDA against the CPU backend.</summary>
public sealed class CudaConvPoolTests : CudaTest
{
    static readonly object[] ConvCases =
    [
        // batch, in, out, groups, input, kernel, stride, padding, dilation
        new object[] { 2, 3, 4, 1, new Dim3(1, 6, 5), new Dim3(1, 3, 3), new Dim3(1, 1, 1), new Dim3(0, 1, 1), new Dim3(1, 1, 1) },
        new object[] { 1, 4, 6, 2, new Dim3(4, 5, 5), new Dim3(3, 2, 3), new Dim3(1, 2, 1), new Dim3(1, 0, 1), new Dim3(1, 1, 2) },
        new object[] { 2, 2, 3, 1, new Dim3(3, 4, 4), new Dim3(1, 1, 1), new Dim3(1, 1, 1), new Dim3(0, 0, 0), new Dim3(1, 1, 1) },
        new object[] { 1, 4, 4, 4, new Dim3(2, 5, 6), new Dim3(2, 3, 3), new Dim3(2, 1, 2), new Dim3(0, 1, 1), new Dim3(1, 1, 1) },
    ];

    [TestCaseSource(nameof(ConvCases))]
    public void ConvolutionsMatchCpu(int batch, int cin, int cout, int groups, Dim3 input, Dim3 kernel, Dim3 stride, Dim3 pad, Dim3 dil)
    {
        var spec = new ConvSpec(batch, cin, cout, groups, input, kernel, stride, pad, dil);
        var o = spec.Output;
        int[] xs = [batch, cin, input.T, input.H, input.W], ws = [cout, cin / groups, kernel.T, kernel.H, kernel.W], ys = [batch, cout, o.T, o.H, o.W];
        var x = Pair(Rand.Uniform(1, (int)new Shape(xs).Numel), xs);
        var w = Pair(Rand.Uniform(2, (int)new Shape(ws).Numel), ws);
        var y = Out(ys);
        Cpu.Backend.ConvForward(spec, x.Cpu, w.Cpu, y.Cpu);
        Gpu.Backend.ConvForward(spec, x.Gpu, w.Gpu, y.Gpu);
        Close(y, 1e-5, 1e-5, "ConvForward");

        var dy = Pair(Rand.Uniform(3, (int)new Shape(ys).Numel), ys);
        var dx = Out(xs);
        Cpu.Backend.ConvBackwardData(spec, dy.Cpu, w.Cpu, dx.Cpu);
        Gpu.Backend.ConvBackwardData(spec, dy.Gpu, w.Gpu, dx.Gpu);
        Close(dx, 1e-5, 1e-5, "ConvBackwardData");

        var dw = Out(ws);
        Cpu.Backend.ConvBackwardFilter(spec, x.Cpu, dy.Cpu, dw.Cpu);
        Gpu.Backend.ConvBackwardFilter(spec, x.Gpu, dy.Gpu, dw.Gpu);
        Close(dw, 1e-5, 1e-5, "ConvBackwardFilter");
    }

    [Test]
    public void A_2d_convolution_is_described_to_cudnn_as_2d()
    {
        // Depth 1 throughout: NCHW tensors and 2 spatial parameters (cuDNN's fast 2-D kernels), not NCDHW with D = 1.
        var flat = Sbp.Backends.Cuda.ConvDescriptor.From(new ConvSpec(2, 3, 4, 1, new Dim3(1, 6, 5), new Dim3(1, 3, 3), Dim3.All(1), new Dim3(0, 1, 1), Dim3.All(1)));
        Assert.That(flat.X, Is.EqualTo(new[] { 2, 3, 6, 5 }));
        Assert.That(flat.W, Is.EqualTo(new[] { 4, 3, 3, 3 }));
        Assert.That(flat.Y, Is.EqualTo(new[] { 2, 4, 6, 5 }));
        Assert.That(flat.Pad, Is.EqualTo(new[] { 1, 1 }));
        Assert.That(flat.As3d().X, Is.EqualTo(new[] { 2, 3, 1, 6, 5 }), "the simulator's NCDHW view");
        // A kernel of depth 1 over a clip (T = 4) is still 3-D.
        var video = Sbp.Backends.Cuda.ConvDescriptor.From(new ConvSpec(1, 2, 2, 1, new Dim3(4, 5, 5), new Dim3(1, 3, 3), Dim3.All(1), new Dim3(0, 1, 1), Dim3.All(1)));
        Assert.That(video.X, Has.Length.EqualTo(5));
        Assert.That(video.SpatialAxes, Is.EqualTo(3));
    }

    [Test]
    public void ConvolutionAlgorithmIsChosenOncePerShapeAndWorkspaceComesFromThePool()
    {
        SimulatorOnly();
        var spec = new ConvSpec(1, 2, 2, 1, new Dim3(1, 4, 4), new Dim3(1, 3, 3), Dim3.All(1), new Dim3(0, 1, 1), Dim3.All(1));
        var x = Tensor.FromArray(Rand.Uniform(4, 32), new Shape(1, 2, 1, 4, 4), Gpu);
        var w = Tensor.FromArray(Rand.Uniform(5, 36), new Shape(2, 2, 1, 3, 3), Gpu);
        var y = Tensor.Empty(new Shape(1, 2, 1, 4, 4), Gpu);
        var backend = (CudaBackend)Gpu.Backend;
        Gpu.Pool.ResetPeak();
        long before = Gpu.Pool.PeakInUseBytes;
        for (int i = 0; i < 3; i++) backend.ConvForward(spec, x, w, y);
        Assert.That(backend.CachedConvolutionAlgorithms, Is.EqualTo(1));
        Assert.That(SimulatedCuda.LibraryCalls(Gpu)["cudnnGetConvolutionForwardAlgorithm_v7"], Is.EqualTo(1));
        Assert.That(SimulatedCuda.LibraryCalls(Gpu)["cudnnConvolutionForward"], Is.EqualTo(3));
        Assert.That(Gpu.Pool.PeakInUseBytes - before, Is.GreaterThanOrEqualTo(SimCudaApi.ConvWorkspaceBytes), "the workspace is a pool block");
    }

    [TestCase(DType.BFloat16, 1)]
    [TestCase(DType.Float16, 2)]
    public void A16BitConvolutionRunsCudnnOnThe16BitTensorsWithTheWidenedBits(DType type, int groups)
    {
        var spec = new ConvSpec(2, 4, 6, groups, new Dim3(3, 5, 5), new Dim3(3, 3, 3), new Dim3(1, 2, 2), Dim3.All(1), Dim3.All(1));
        var o = spec.Output;
        using var x32 = Tensor.FromArray(Rand.Uniform(21, 2 * 4 * 75, -2f, 2f), new Shape(2, 4, 3, 5, 5), Gpu);
        using var w32 = Tensor.FromArray(Rand.Uniform(22, 6 * (4 / groups) * 27, -0.5f, 0.5f), new Shape(6, 4 / groups, 3, 3, 3), Gpu);
        using var x = x32.To(type);
        using var w = w32.To(type);
        using var wx = x.To(DType.Float32);
        using var ww = w.To(DType.Float32);
        var outShape = new Shape(2, 6, o.T, o.H, o.W);
        using var widened = Tensor.Empty(outShape, Gpu);
        Gpu.Backend.ConvForward(spec, wx, ww, widened);
        using var y = Tensor.Empty(outShape, Gpu, type);
        int widenings = OnRealGpu ? 0 : SimulatedCuda.Launches(Gpu).GetValueOrDefault(type == DType.BFloat16 ? "to_f32_bf16" : "to_f32_f16");
        Gpu.Backend.ConvForward(spec, x, w, y);
        if (!OnRealGpu)
            Assert.That(SimulatedCuda.Launches(Gpu).GetValueOrDefault(type == DType.BFloat16 ? "to_f32_bf16" : "to_f32_f16"), Is.EqualTo(widenings),
                "cuDNN reads the 16-bit x and w: nothing widened");
        using var expected = widened.To(type);
        using var a = y.To(DType.Float32);
        using var e = expected.To(DType.Float32);
        if (OnRealGpu) Assert.That(a.ToArray(), Is.EqualTo(e.ToArray()).Within(2e-2));   // cuDNN's own summation order
        else Assert.That(a.ToArray(), Is.EqualTo(e.ToArray()), "the Float32 convolution on the widenings, rounded");
    }

    [Test]
    public void A16BitConvolutionWithoutAUsableCudnnAlgorithmRunsWidened()
    {
        SimulatorOnly();
        var sim = SimulatedCuda.Api(Gpu);
        sim.Has16BitConvolutions = false;
        var spec = new ConvSpec(1, 2, 3, 1, new Dim3(2, 4, 4), new Dim3(1, 3, 3), Dim3.All(1), new Dim3(0, 1, 1), Dim3.All(1));
        using var x = Tensor.FromArray(Rand.Uniform(23, 64), new Shape(1, 2, 2, 4, 4), Gpu).To(DType.BFloat16);
        using var w = Tensor.FromArray(Rand.Uniform(24, 54), new Shape(3, 2, 1, 3, 3), Gpu).To(DType.BFloat16);
        using var y = Tensor.Empty(new Shape(1, 3, 2, 4, 4), Gpu, DType.BFloat16);
        int widenings = SimulatedCuda.Launches(Gpu).GetValueOrDefault("to_f32_bf16");
        for (int i = 0; i < 2; i++) Gpu.Backend.ConvForward(spec, x, w, y);
        Assert.That(SimulatedCuda.Launches(Gpu).GetValueOrDefault("to_f32_bf16") - widenings, Is.EqualTo(4), "x and w widened, each call");
        Assert.That(SimulatedCuda.LibraryCalls(Gpu)["cudnnGetConvolutionForwardAlgorithm_v7"], Is.EqualTo(2),
            "asked once for bfloat16 (none usable, remembered), once for the Float32 fallback");
        using var wx = x.To(DType.Float32);
        using var ww = w.To(DType.Float32);
        using var y32 = Tensor.Empty(new Shape(1, 3, 2, 4, 4), Gpu);
        Gpu.Backend.ConvForward(spec, wx, ww, y32);
        using var a = y.To(DType.Float32);
        using var b = y32.To(DType.BFloat16).To(DType.Float32);
        Assert.That(a.ToArray(), Is.EqualTo(b.ToArray()));
    }

    static readonly object[] Backward16Cases =
    [
        // type, groups, kernel: grouped 3x3x3, depthwise (the CPU's own kernels), pointwise (x itself is the column matrix)
        new object[] { DType.BFloat16, 1, new Dim3(3, 3, 3) },
        new object[] { DType.Float16, 2, new Dim3(3, 3, 3) },
        new object[] { DType.BFloat16, 4, new Dim3(1, 3, 3) },
        new object[] { DType.BFloat16, 1, new Dim3(1, 1, 1) },
    ];

    /// <summary>
    /// Autocast's conv backward (a 16-bit dy, as PyTorch's): on both devices the data and filter gradients are the Float32
    /// passes on the widenings rounded to the 16-bit type; on CUDA cuDNN reads the 16-bit tensors (nothing widened but its
    /// 16-bit result) and the CPU reads them in its GEMMs.
    /// </summary>
    [TestCaseSource(nameof(Backward16Cases))]
    public void A16BitConvolutionBackwardGivesTheWidenedPassRounded(DType type, int groups, Dim3 kernel)
    {
        var pad = new Dim3(kernel.T / 2, kernel.H / 2, kernel.W / 2);
        var spec = new ConvSpec(2, 4, 4, groups, new Dim3(3, 5, 5), kernel, new Dim3(1, 2, 1), pad, Dim3.All(1));
        var o = spec.Output;
        int[] xs = [2, 4, 3, 5, 5], ws = [4, 4 / groups, kernel.T, kernel.H, kernel.W], ys = [2, 4, o.T, o.H, o.W];
        string widen = type == DType.BFloat16 ? "to_f32_bf16" : "to_f32_f16";
        foreach (var device in new[] { Cpu, Gpu })
        {
            using var x = Tensor.FromArray(Rand.Uniform(31, (int)new Shape(xs).Numel, -2f, 2f), new Shape(xs), device).To(type);
            using var w = Tensor.FromArray(Rand.Uniform(32, (int)new Shape(ws).Numel, -0.5f, 0.5f), new Shape(ws), device).To(type);
            using var dy = Tensor.FromArray(Rand.Uniform(33, (int)new Shape(ys).Numel, -1f, 1f), new Shape(ys), device).To(type);
            using var wx = x.To(DType.Float32);
            using var ww = w.To(DType.Float32);
            using var wdy = dy.To(DType.Float32);
            using var dx = Tensor.Empty(new Shape(xs), device);
            using var dw = Tensor.Empty(new Shape(ws), device);
            using var dx32 = Tensor.Empty(new Shape(xs), device);
            using var dw32 = Tensor.Empty(new Shape(ws), device);
            device.Backend.ConvBackwardData(spec, wdy, ww, dx32);
            device.Backend.ConvBackwardFilter(spec, wx, wdy, dw32);
            int widenings = device == Gpu && !OnRealGpu ? SimulatedCuda.Launches(Gpu).GetValueOrDefault(widen) : 0;
            device.Backend.ConvBackwardData(spec, dy, w, dx);
            device.Backend.ConvBackwardFilter(spec, x, dy, dw);
            if (device == Gpu && !OnRealGpu)
                Assert.That(SimulatedCuda.Launches(Gpu).GetValueOrDefault(widen) - widenings, Is.EqualTo(2), "cuDNN reads the 16-bit tensors: only dx and dw are widened");
            using var ex = dx32.To(type);
            using var ew = dw32.To(type);
            using var e1 = ex.To(DType.Float32);
            using var e2 = ew.To(DType.Float32);
            if (OnRealGpu && device == Gpu)
            {
                Assert.That(dx.ToArray(), Is.EqualTo(e1.ToArray()).Within(2e-2));   // cuDNN's own summation order
                Assert.That(dw.ToArray(), Is.EqualTo(e2.ToArray()).Within(5e-2));
                continue;
            }
            Assert.That(dx.ToArray(), Is.EqualTo(e1.ToArray()), $"{device}: dx, the Float32 pass on the widenings, rounded");
            Assert.That(dw.ToArray(), Is.EqualTo(e2.ToArray()), $"{device}: dw, the Float32 pass on the widenings, rounded");
        }
    }

    [Test]
    public void A16BitConvolutionBackwardWithoutAUsableCudnnAlgorithmRunsWidenedAndRounds()
    {
        SimulatorOnly();
        SimulatedCuda.Api(Gpu).Has16BitConvolutions = false;
        var spec = new ConvSpec(1, 2, 3, 1, new Dim3(2, 4, 4), new Dim3(1, 3, 3), Dim3.All(1), new Dim3(0, 1, 1), Dim3.All(1));
        using var x = Tensor.FromArray(Rand.Uniform(34, 64), new Shape(1, 2, 2, 4, 4), Gpu).To(DType.BFloat16);
        using var w = Tensor.FromArray(Rand.Uniform(35, 54), new Shape(3, 2, 1, 3, 3), Gpu).To(DType.BFloat16);
        using var dy = Tensor.FromArray(Rand.Uniform(36, 96), new Shape(1, 3, 2, 4, 4), Gpu).To(DType.BFloat16);
        using var dx = Tensor.Empty(new Shape(1, 2, 2, 4, 4), Gpu);
        using var dw = Tensor.Empty(new Shape(3, 2, 1, 3, 3), Gpu);
        for (int i = 0; i < 2; i++)
        {
            Gpu.Backend.ConvBackwardData(spec, dy, w, dx);
            Gpu.Backend.ConvBackwardFilter(spec, x, dy, dw);
        }
        Assert.That(SimulatedCuda.LibraryCalls(Gpu)["cudnnGetConvolutionBackwardDataAlgorithm_v7"], Is.EqualTo(2),
            "asked once for bfloat16 (none usable, remembered), once for the Float32 fallback");
        Assert.That(SimulatedCuda.LibraryCalls(Gpu)["cudnnGetConvolutionBackwardFilterAlgorithm_v7"], Is.EqualTo(2));
        using var wx = x.To(DType.Float32);
        using var ww = w.To(DType.Float32);
        using var wdy = dy.To(DType.Float32);
        using var dx32 = Tensor.Empty(dx.Shape, Gpu);
        using var dw32 = Tensor.Empty(dw.Shape, Gpu);
        Gpu.Backend.ConvBackwardData(spec, wdy, ww, dx32);
        Gpu.Backend.ConvBackwardFilter(spec, wx, wdy, dw32);
        using var ex = dx32.To(DType.BFloat16).To(DType.Float32);
        using var ew = dw32.To(DType.BFloat16).To(DType.Float32);
        Assert.That(dx.ToArray(), Is.EqualTo(ex.ToArray()), "dx rounded to bfloat16");
        Assert.That(dw.ToArray(), Is.EqualTo(ew.ToArray()), "dw rounded to bfloat16");
        Assert.That(dx.ToArray(), Is.Not.EqualTo(dx32.ToArray()), "the rounding is visible at this size");
    }

    static readonly object[] PoolCases =
    [
        new object[] { PoolMode.Max, new Dim3(1, 6, 7), new Dim3(1, 3, 3), new Dim3(1, 2, 2), new Dim3(0, 1, 1), true },
        new object[] { PoolMode.Max, new Dim3(4, 5, 5), new Dim3(2, 2, 2), new Dim3(1, 1, 1), new Dim3(1, 0, 1), true },
        new object[] { PoolMode.Average, new Dim3(1, 6, 7), new Dim3(1, 3, 3), new Dim3(1, 2, 2), new Dim3(0, 1, 1), true },
        new object[] { PoolMode.Average, new Dim3(3, 5, 4), new Dim3(2, 3, 2), new Dim3(1, 2, 2), new Dim3(1, 1, 1), false },
    ];

    [TestCaseSource(nameof(PoolCases))]
    public void PoolingMatchesCpu(PoolMode mode, Dim3 input, Dim3 kernel, Dim3 stride, Dim3 pad, bool includePad)
    {
        var spec = new PoolSpec(mode, 2, 3, input, kernel, stride, pad, includePad);
        var o = spec.Output;
        int[] xs = [2, 3, input.T, input.H, input.W], ys = [2, 3, o.T, o.H, o.W];
        var x = Pair(Rand.Distinct(6, (int)new Shape(xs).Numel), xs);
        var y = Out(ys);
        (Tensor Cpu, Tensor Gpu) idx = mode == PoolMode.Max
            ? (Tensor.Empty(new Shape(ys), Cpu, DType.Int32), Tensor.Empty(new Shape(ys), Gpu, DType.Int32))
            : default;
        Cpu.Backend.PoolForward(spec, x.Cpu, y.Cpu, idx.Cpu);
        Gpu.Backend.PoolForward(spec, x.Gpu, y.Gpu, idx.Gpu);
        Close(y, 1e-5, 1e-7, $"PoolForward {mode}");
        if (mode == PoolMode.Max) Assert.That(idx.Gpu.ToIntArray(), Is.EqualTo(idx.Cpu.ToIntArray()), "max indices");

        var dy = Pair(Rand.Uniform(7, (int)new Shape(ys).Numel), ys);
        var dx = Out(xs);
        Cpu.Backend.PoolBackward(spec, dy.Cpu, idx.Cpu, dx.Cpu);
        Gpu.Backend.PoolBackward(spec, dy.Gpu, idx.Gpu, dx.Gpu);
        // Max: max_pool3d_bwd_f32 adds each window's dy with red.global.add, in the atomics' order, the CPU in window
        // order. An input is the maximum of at most k = prod ceil(kernel / stride) windows; either sum of k terms in
        // [-1, 1] is within (k - 1) 2^-24 k of the exact one (Higham 4.2), so the two within twice that.
        int k = (int)(Math.Ceiling(kernel.T / (double)stride.T) * Math.Ceiling(kernel.H / (double)stride.H) * Math.Ceiling(kernel.W / (double)stride.W));
        Close(dx, 1e-5, mode == PoolMode.Max ? Math.Max(1e-6, 2 * (k - 1) * Math.ScaleB(1.0, -24) * k) : 1e-6, $"PoolBackward {mode}");
    }

    /// <summary>
    /// The choice among cuDNN's ranked algorithms: deterministic first, never one whose workspace exceeds
    /// CudaBackend.ConvWorkspaceLimitBytes (a faster one that needs more is passed over); none fitting is an error naming the limit.
    /// </summary>
    [Test]
    public void AnAlgorithmWhoseWorkspaceExceedsTheLimitIsPassedOver()
    {
        SimulatorOnly();
        var spec = new ConvSpec(1, 2, 2, 1, new Dim3(1, 4, 4), new Dim3(1, 3, 3), Dim3.All(1), new Dim3(0, 1, 1), Dim3.All(1));
        var x = Pair(Rand.Uniform(4, 32), 1, 2, 1, 4, 4);
        var w = Pair(Rand.Uniform(5, 36), 2, 2, 1, 3, 3);
        var y = Out(1, 2, 1, 4, 4);
        var backend = (CudaBackend)Gpu.Backend;
        var sim = SimulatedCuda.Api(Gpu);
        Cpu.Backend.ConvForward(spec, x.Cpu, w.Cpu, y.Cpu);
        // Ranked first: a non-deterministic one, then a faster one needing 64 MiB of workspace.
        sim.ExtraConvCandidates = [new ConvCandidate(2, true, false, 0), new ConvCandidate(1, true, true, 64L << 20)];
        backend.ConvWorkspaceLimitBytes = 32L << 20;
        backend.ConvForward(spec, x.Gpu, w.Gpu, y.Gpu);
        Assert.That(sim.LastConvAlgorithm, Is.Zero, "64 MiB exceeds the 32 MiB limit; the non-deterministic one is not preferred");
        Close(y, 1e-5, 1e-5, "ConvForward");
        backend.ConvWorkspaceLimitBytes = 128L << 20;   // forgets the choice
        backend.ConvForward(spec, x.Gpu, w.Gpu, y.Gpu);
        Assert.That(sim.LastConvAlgorithm, Is.EqualTo(1), "within the raised limit the heuristics' faster choice runs");
        Close(y, 1e-5, 1e-5, "ConvForward with algorithm 1");
        sim.ExtraConvCandidates = [new ConvCandidate(1, true, true, 64L << 20)];
        backend.ConvWorkspaceLimitBytes = 512;   // below every usable candidate's workspace
        var e = Assert.Throws<CudaException>(() => backend.ConvForward(spec, x.Gpu, w.Gpu, y.Gpu))!;
        Assert.That(e.Message, Does.Contain("within the workspace limit of 512 B").And.Contain("the smallest usable one needs").And.Contain("ConvWorkspaceLimitBytes"));
    }
}
