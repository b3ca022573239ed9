using Sbp.Backends;
using Sbp.CudaSim;
using Sbp.Tensors;

namespace Sbp.Kernels.Tests.Cuda;

/// <summary>GEMM (row-major GemmSpec through column-major cuBLAS), reductions, permutes, slices, gather / scatter.</summary>
public sealed class CudaLinearAlgebraTests : CudaTest
{
    [TestCase(false, false, 3, 5, 4, 1)]
    [TestCase(true, false, 4, 3, 6, 1)]
    [TestCase(false, true, 2, 7, 5, 1)]
    [TestCase(true, true, 5, 4, 3, 1)]
    [TestCase(false, true, 3, 4, 5, 3)]
    [TestCase(true, false, 2, 3, 4, 2)]
    public void GemmMatchesCpu(bool ta, bool tb, int m, int n, int k, int batch)
    {
        var spec = new GemmSpec(ta, tb, m, n, k, batch, m * k, k * n, m * n, Alpha: 0.75f, Beta: 0.5f);
        var a = Pair(Rand.Uniform(1, batch * m * k), batch, ta ? k : m, ta ? m : k);
        var b = Pair(Rand.Uniform(2, batch * k * n), batch, tb ? n : k, tb ? k : n);
        var c = Pair(Rand.Uniform(3, batch * m * n), batch, m, n);
        Cpu.Backend.Gemm(spec, a.Cpu, b.Cpu, c.Cpu);
        Gpu.Backend.Gemm(spec, a.Gpu, b.Gpu, c.Gpu);
        Close(c, 1e-5, 1e-6, "Gemm");
        if (!OnRealGpu) Assert.That(SimulatedCuda.LibraryCalls(Gpu).Keys, Has.Some.StartsWith("cublasSgemm"));
    }

    [Test]
    public void GemmWithBroadcastOperandOffsetsAndBetaZeroIgnoresNaNInC()
    {
        // A shared by every batch entry (stride 0), B and C at element offsets.
        int m = 3, n = 4, k = 2, batch = 2;
        var spec = new GemmSpec(false, false, m, n, k, batch, 0, k * n, m * n, OffsetB: 2, OffsetC: 1);
        var a = Pair(Rand.Uniform(4, m * k), m, k);
        var b = Pair(Rand.Uniform(5, 2 + batch * k * n), 2 + batch * k * n);
        var cpuC = Tensor.Full(new Shape(1 + batch * m * n), 0f, Cpu);
        var gpuC = Tensor.Full(new Shape(1 + batch * m * n), float.NaN, Gpu);
        Cpu.Backend.Gemm(spec, a.Cpu, b.Cpu, cpuC);
        Gpu.Backend.Gemm(spec, a.Gpu, b.Gpu, gpuC);
        Support.Check.Close(cpuC.ToArray()[1..], gpuC.ToArray()[1..], 1e-5, 1e-6, "Gemm stride 0 + offsets");
        Assert.That(gpuC.ToArray()[0], Is.NaN, "the element before OffsetC is untouched");
    }

    /// <summary>
    /// 16-bit A and B (cuBLAS GemmEx, CUBLAS_COMPUTE_32F) with a 16-bit C read (beta) and written, and with a Float32 C, at
    /// element offsets: the same as the Float32 GEMM on the exact widenings, C rounded once. The CPU and the simulated
    /// device differ only in their summation order, so a 16-bit C may land one rounding step apart.
    /// </summary>
    [TestCase(DType.BFloat16)]
    [TestCase(DType.Float16)]
    public void SixteenBitGemmMatchesTheFloat32GemmOnItsWidenings(DType dt)
    {
        int m = 5, n = 7, k = 9, batch = 2;
        var spec = new GemmSpec(true, false, m, n, k, batch, m * k, k * n, m * n, Alpha: 0.5f, Beta: 0.25f, OffsetA: 3, OffsetC: 1);
        var a = Pair(Rand.Uniform(6, 3 + batch * m * k), 3 + batch * m * k);
        var b = Pair(Rand.Uniform(7, batch * k * n), batch * k * n);
        var c = Pair(Rand.Uniform(8, 1 + batch * m * n), 1 + batch * m * n);
        (Tensor Cpu, Tensor Gpu) Half((Tensor Cpu, Tensor Gpu) t) => (t.Cpu.To(dt), t.Gpu.To(dt));
        var (a16, b16, c16) = (Half(a), Half(b), Half(c));
        var c32 = (Cpu: c16.Cpu.To(DType.Float32), Gpu: c16.Gpu.To(DType.Float32));
        Cpu.Backend.Gemm(spec, a16.Cpu, b16.Cpu, c16.Cpu);
        Gpu.Backend.Gemm(spec, a16.Gpu, b16.Gpu, c16.Gpu);
        Cpu.Backend.Gemm(spec, a16.Cpu, b16.Cpu, c32.Cpu);   // Float32 C
        Gpu.Backend.Gemm(spec, a16.Gpu, b16.Gpu, c32.Gpu);
        // the reference: the Float32 GEMM on the widenings
        var (aw, bw) = (a16.Cpu.To(DType.Float32), b16.Cpu.To(DType.Float32));
        var reference = c.Cpu.To(dt).To(DType.Float32);
        Cpu.Backend.Gemm(spec, aw, bw, reference);
        Assert.That(c32.Cpu.ToArray(), Is.EqualTo(reference.ToArray()), "the CPU: the Float32 GEMM on the widenings, bit for bit");
        Assert.That(c16.Cpu.ToArray(), Is.EqualTo(reference.To(dt).ToArray()), "a 16-bit C: that result rounded once");
        Support.Check.Close(c32.Cpu.ToArray(), c32.Gpu.ToArray(), 1e-5, 1e-6, "16-bit GEMM, Float32 C");
        Support.Check.Close(c16.Cpu.ToArray(), c16.Gpu.ToArray(), dt == DType.BFloat16 ? 8e-3 : 1e-3, 1e-3, "16-bit GEMM, 16-bit C");
        if (!OnRealGpu) Assert.That(SimulatedCuda.LibraryCalls(Gpu).Keys, Has.Some.EqualTo("cublasGemmStridedBatchedEx"));
        // a Float32 B beside a 16-bit A is read rounded to A's type (the CPU while packing, the device through a cast)
        var (mixedCpu, mixedGpu, both16) = (c.Cpu.To(dt).To(DType.Float32), c.Gpu.To(dt).To(DType.Float32), c.Cpu.To(dt).To(DType.Float32));
        Cpu.Backend.Gemm(spec, a16.Cpu, b.Cpu, mixedCpu);
        Gpu.Backend.Gemm(spec, a16.Gpu, b.Gpu, mixedGpu);
        Cpu.Backend.Gemm(spec, a16.Cpu, b16.Cpu, both16);
        Assert.That(mixedCpu.ToArray(), Is.EqualTo(both16.ToArray()), "a Float32 B: the GEMM on B cast first, bit for bit");
        Support.Check.Close(mixedCpu.ToArray(), mixedGpu.ToArray(), 1e-5, 1e-6, "16-bit A, Float32 B");
        var other = dt == DType.BFloat16 ? DType.Float16 : DType.BFloat16;
        Assert.That(() => Cpu.Backend.Gemm(spec, a16.Cpu, b.Cpu.To(other), c32.Cpu), Throws.ArgumentException.With.Message.Contains("A and B must have one floating type"));
    }

    /// <summary>
    /// C = A B^T (8 x 64 by 6 x 64) against a float64 reference R, element by element, with bounds in
    /// units of S = sum_l |a_il| |b_jl|. Float32 (TF32 off, and the CPU): |C - R| &lt;= (k + 1) 2^-24 S
    /// (k products summed in float32, then one rounding). TF32 keeps 10 explicit mantissa bits, so
    /// rounding each input costs up to 2^-11 of it (round to nearest; 2^-10 allowed on a real GPU, whose
    /// conversion may truncate), a product up to 2 2^-11 + 2^-22, plus the float32 accumulation. With
    /// TF32 on the error must stay within that bound and exceed the float32 bound for most elements
    /// (43 of the 48 here), which shows the inputs were really rounded.
    /// </summary>
    [Test]
    public void Tf32GemmIsOptInAndWithinItsErrorBound()
    {
        const int m = 8, n = 6, k = 64;
        var spec = new GemmSpec(false, true, m, n, k);
        float[] ha = Rand.Uniform(15, m * k), hb = Rand.Uniform(16, n * k);
        var a = Pair(ha, m, k);
        var b = Pair(hb, n, k);
        var (reference, magnitude) = (new double[m * n], new double[m * n]);
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
                for (int l = 0; l < k; l++)
                {
                    reference[i * n + j] += (double)ha[i * k + l] * hb[j * k + l];
                    magnitude[i * n + j] += Math.Abs((double)ha[i * k + l] * hb[j * k + l]);
                }
        double float32Bound = (k + 1) * Math.ScaleB(1, -24);
        double inputRounding = Math.ScaleB(1, OnRealGpu ? -10 : -11);
        double tf32Bound = 2 * inputRounding + inputRounding * inputRounding + float32Bound;
        // The largest |C - R| / S, and how many elements exceed the float32 bound.
        (double Worst, int OverFloat32) Errors(Tensor c)
        {
            var values = c.ToArray();
            var ratios = values.Select((v, i) => Math.Abs(v - reference[i]) / magnitude[i]).ToArray();
            return (ratios.Max(), ratios.Count(r => r > float32Bound));
        }

        var backend = (Sbp.Backends.Cuda.CudaBackend)Gpu.Backend;
        Assert.That(backend.AllowTf32, Is.False, "full float32 by default");
        var c = Out(m, n);
        Cpu.Backend.Gemm(spec, a.Cpu, b.Cpu, c.Cpu);
        Gpu.Backend.Gemm(spec, a.Gpu, b.Gpu, c.Gpu);
        Assert.That(Errors(c.Cpu).Worst, Is.LessThanOrEqualTo(float32Bound), "CPU float32 Gemm");
        Assert.That(Errors(c.Gpu).Worst, Is.LessThanOrEqualTo(float32Bound), "CUDA Gemm with TF32 off");

        var tf32 = Out(m, n).Gpu;
        backend.AllowTf32 = true;
        try { backend.Gemm(spec, a.Gpu, b.Gpu, tf32); }
        finally { backend.AllowTf32 = false; }
        var (worst, overFloat32) = Errors(tf32);
        TestContext.Out.WriteLine($"TF32: worst |C - R| / S = {worst:G3} (TF32 bound {tf32Bound:G3}, float32 bound {float32Bound:G3}); {overFloat32} of {m * n} over the float32 bound");
        Assert.That(worst, Is.LessThanOrEqualTo(tf32Bound), "TF32 Gemm within the TF32 bound");
        Assert.That(overFloat32, Is.GreaterThan(m * n / 2), "TF32 Gemm errs beyond the float32 bound (the inputs were rounded)");
        if (!OnRealGpu)
            Assert.That(SimulatedCuda.LibraryCalls(Gpu), Does.ContainKey("cublasGemmStridedBatchedEx").WithValue(1).And.ContainKey("cublasSgemm_v2").WithValue(1));
    }

    [TestCase(new[] { 4, 5, 6 }, new[] { 4, 1, 6 })]
    [TestCase(new[] { 4, 5, 6 }, new[] { 1, 5, 1 })]
    [TestCase(new[] { 4, 5, 6 }, new[] { 4, 5, 1 })]
    [TestCase(new[] { 300, 7 }, new[] { 1, 1 })]
    [TestCase(new[] { 6, 1, 5 }, new[] { 1, 1, 5 })]
    [TestCase(new[] { 2, 3, 40 }, new[] { 2, 3, 1 })]
    [TestCase(new[] { 3, 1, 2 }, new[] { 3, 1, 2 })]
    public void ReductionsMatchCpu(int[] from, int[] to)
    {
        var x = Pair(Rand.Uniform(6, (int)new Shape(from).Numel), from);
        var s = Out(to);
        var m = Out(to);
        Cpu.Backend.ReduceSum(x.Cpu, s.Cpu);
        Gpu.Backend.ReduceSum(x.Gpu, s.Gpu);
        Cpu.Backend.ReduceMax(x.Cpu, m.Cpu);
        Gpu.Backend.ReduceMax(x.Gpu, m.Gpu);
        Close(s, 1e-5, 1e-5, "ReduceSum");
        Exact(m, "ReduceMax");
    }

    [TestCase(new[] { 2, 3, 4 }, new[] { 2, 0, 1 })]
    [TestCase(new[] { 2, 3, 4, 5 }, new[] { 0, 2, 1, 3 })]
    [TestCase(new[] { 6, 7 }, new[] { 1, 0 })]
    public void PermuteMatchesCpu(int[] shape, int[] perm)
    {
        var x = Pair(Rand.Uniform(7, (int)new Shape(shape).Numel), shape);
        var y = Out(perm.Select(p => shape[p]).ToArray());
        Cpu.Backend.Permute(x.Cpu, perm, y.Cpu);
        Gpu.Backend.Permute(x.Gpu, perm, y.Gpu);
        Exact(y, "Permute");
    }

    [TestCase(false)]
    [TestCase(true)]
    public void CopyAlongDimMatchesCpu(bool accumulate)
    {
        var src = Pair(Rand.Uniform(8, 2 * 5 * 3), 2, 5, 3);
        var dst = Pair(Rand.Uniform(9, 2 * 6 * 3), 2, 6, 3);
        Cpu.Backend.CopyAlongDim(src.Cpu, 1, dst.Cpu, 2, 1, 3, accumulate);
        Gpu.Backend.CopyAlongDim(src.Gpu, 1, dst.Gpu, 2, 1, 3, accumulate);
        Exact(dst, "CopyAlongDim");
    }

    [TestCase(3, 7, 5, 4)]
    [TestCase(2, 9, 8, 5)]
    public void GatherAndScatterAddMatchCpu(int outer, int n, int inner, int kept)
    {
        var x = Pair(Rand.Uniform(10, outer * n * inner), outer, n, inner);
        var idx = PairInt(Rand.DistinctInts(11, n, kept), kept);
        var y = Out(outer, kept, inner);
        Cpu.Backend.IndexSelect(x.Cpu, 1, idx.Cpu, y.Cpu);
        Gpu.Backend.IndexSelect(x.Gpu, 1, idx.Gpu, y.Gpu);
        Exact(y, "IndexSelect");

        var rep = PairInt(Rand.Ints(12, kept + 3, 0, n), kept + 3);
        var g = Pair(Rand.Uniform(13, outer * (kept + 3) * inner), outer, kept + 3, inner);
        var dx = Pair(Rand.Uniform(14, outer * n * inner), outer, n, inner);
        Cpu.Backend.IndexAdd(dx.Cpu, 1, rep.Cpu, g.Cpu);
        Gpu.Backend.IndexAdd(dx.Gpu, 1, rep.Gpu, g.Gpu);
        Close(dx, 1e-6, 1e-6, "IndexAdd with repeated indices");
        if (!OnRealGpu) Assert.That(SimulatedCuda.Launches(Gpu).Keys, Has.Some.StartsWith("gather_f32").And.Some.EqualTo("scatter_add_atomic_f32"));
    }
}
