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

    [Test]
    public void Tf32GemmIsOptInAndCloseToFloat32()
    {
        var spec = new GemmSpec(false, true, 8, 6, 64);
        var a = Pair(Rand.Uniform(15, 8 * 64), 8, 64);
        var b = Pair(Rand.Uniform(16, 6 * 64), 6, 64);
        var c = Out(8, 6);
        var backend = (Sbp.Backends.Cuda.CudaBackend)Gpu.Backend;
        Assert.That(backend.AllowTf32, Is.False, "full float32 by default");
        Cpu.Backend.Gemm(spec, a.Cpu, b.Cpu, c.Cpu);
        backend.AllowTf32 = true;
        try { backend.Gemm(spec, a.Gpu, b.Gpu, c.Gpu); }
        finally { backend.AllowTf32 = false; }
        Close(c, 0, 2e-2, "TF32 Gemm (inputs rounded to 10 mantissa bits)");
        if (!OnRealGpu) Assert.That(SimulatedCuda.LibraryCalls(Gpu).Keys, Does.Contain("cublasGemmStridedBatchedEx"));
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
