using Sbp.Backends;
using Sbp.Backends.Cpu;
using Sbp.Backends.Cpu.Gemm;
using Sbp.Engine.Tests.Support;
using Sbp.Tensors;

namespace Sbp.Engine.Tests.Backends.Cpu;

/// <summary>
/// The packed SGEMM behind CpuBackend.Gemm against the plain triple loop (GemmReference, float64
/// sums), with an error bound from the float32 summation: |c - ref| &lt;= 2 eps (K + 2) * the same
/// product on absolute values. Plus bitwise equality across thread counts (fixed K order).
/// </summary>
public sealed unsafe class SgemmTests : DeviceTest
{
    static readonly int[] OddSizes = [1, 3, 17, 33, 65, 129];

    /// <summary>Runs spec through CpuBackend.Gemm on buffers of the given lengths; returns C.</summary>
    float[] Fast(GemmSpec g, float[] a, float[] b, float[] c, int threads = 0) => OnThreads(threads, () =>
    {
        using var ta = T(a, a.Length);
        using var tb = T(b, b.Length);
        using var tc = T(c, c.Length);
        CpuBackend.Instance.Gemm(g, ta, tb, tc);
        return tc.ToArray();
    });

    /// <summary>body with the CPU GEMM on <paramref name="threads"/> threads (0: as set), the setting restored after.</summary>
    static TResult OnThreads<TResult>(int threads, Func<TResult> body)
    {
        var backend = CpuBackend.Instance;
        int saved = backend.GemmThreads;
        try
        {
            if (threads > 0) backend.GemmThreads = threads;
            return body();
        }
        finally
        {
            backend.GemmThreads = saved;
        }
    }

    static float[] Reference(GemmSpec g, float[] a, float[] b, float[] c)
    {
        var r = (float[])c.Clone();
        fixed (float* pa = a, pb = b, pc = r) GemmReference.Run(g, pa + g.OffsetA, pb + g.OffsetB, pc + g.OffsetC);
        return r;
    }

    static float[] Abs(float[] x) => x.Select(MathF.Abs).Select(v => float.IsNaN(v) ? 0f : v).ToArray();

    /// <summary>Buffer lengths that hold every batch entry of each operand at its offset and stride.</summary>
    static (int A, int B, int C) Lengths(GemmSpec g)
    {
        long Need(long offset, long stride, long size) => offset + (g.Batch - 1) * stride + size;
        return ((int)Need(g.OffsetA, g.StrideA, (long)g.M * g.K), (int)Need(g.OffsetB, g.StrideB, (long)g.K * g.N),
            (int)Need(g.OffsetC, g.StrideC, (long)g.M * g.N));
    }

    void Check(GemmSpec g, int seed, bool nanC = false, int threads = 0)
    {
        var (la, lb, lc) = Lengths(g);
        var a = Rand.Uniform(seed, la);
        var b = Rand.Uniform(seed + 1, lb);
        var c = nanC ? Enumerable.Repeat(float.NaN, lc).ToArray() : Rand.Uniform(seed + 2, lc);
        var got = Fast(g, a, b, c, threads);
        var want = Reference(g, a, b, c);
        var bound = Reference(g with { Alpha = Math.Abs(g.Alpha), Beta = Math.Abs(g.Beta) }, Abs(a), Abs(b), Abs(c));
        for (int i = 0; i < lc; i++)
        {
            double tol = 2 * 1.2e-7 * (g.K + 2) * bound[i] + 1e-30;
            if (!(Math.Abs(got[i] - want[i]) <= tol))
                Assert.Fail($"{g}: C[{i}] = {got[i]}, reference {want[i]} (tolerance {tol:G3}).");
        }
    }

    [TestCase(false, false)]
    [TestCase(false, true)]
    [TestCase(true, false)]
    [TestCase(true, true)]
    public void OddSizes_AllTransposes_MatchTheReference(bool transA, bool transB)
    {
        // Every size combination, each with its own mix of batch count, gaps between entries, a
        // shared A, offsets, alpha and beta (cycled by the case number).
        float[] alphas = [1f, 0.5f, -2f], betas = [0f, 1f, 0.25f];
        int seed = 1;
        foreach (int m in OddSizes)
            foreach (int n in OddSizes)
                foreach (int k in OddSizes)
                {
                    int batch = 1 + seed % 3, gap = seed % 2 * 3;
                    Check(new GemmSpec(transA, transB, m, n, k, Batch: batch,
                        StrideA: seed % 5 == 0 ? 0 : m * k + gap, StrideB: k * n + gap, StrideC: m * n + gap,
                        Alpha: alphas[seed % 3], Beta: betas[seed / 3 % 3], OffsetA: seed % 4, OffsetB: seed % 3, OffsetC: seed % 2), seed);
                    seed++;
                }
    }

    [TestCase(1f, 0f, false)]
    [TestCase(0.5f, 0f, true)]   // beta 0 overwrites C without reading it (NaN stays out)
    [TestCase(1f, 1f, false)]
    [TestCase(-1.5f, 0.25f, false)]
    public void AlphaBeta_AllTransposes(float alpha, float beta, bool nanC)
    {
        int seed = 100;
        foreach (bool ta in new[] { false, true })
            foreach (bool tb in new[] { false, true })
                foreach (var (m, n, k) in new[] { (17, 33, 65), (65, 17, 3), (7, 20, 300) })
                    Check(new GemmSpec(ta, tb, m, n, k, Alpha: alpha, Beta: beta), seed++, nanC);
    }

    [Test]
    public void StridedBatches_WithOffsetsGapsAndSharedOperands()
    {
        int seed = 200;
        foreach (bool ta in new[] { false, true })
            foreach (bool tb in new[] { false, true })
            {
                int m = 17, n = 33, k = 20;
                long sa = m * k + 5, sb = k * n + 3, sc = m * n + 7; // gaps between entries
                Check(new GemmSpec(ta, tb, m, n, k, Batch: 3, StrideA: sa, StrideB: sb, StrideC: sc, Alpha: 0.75f, Beta: 0.5f,
                    OffsetA: 4, OffsetB: 9, OffsetC: 2), seed++);
                // One A (stride 0) for every entry, and one B.
                Check(new GemmSpec(ta, tb, m, n, k, Batch: 5, StrideA: 0, StrideB: sb, StrideC: sc), seed++);
                Check(new GemmSpec(ta, tb, m, n, k, Batch: 4, StrideA: sa, StrideB: 0, StrideC: sc, OffsetB: 1), seed++);
                // Many small entries, as attention's per-head products.
                Check(new GemmSpec(ta, tb, 7, 9, 5, Batch: 37, StrideA: 35, StrideB: 45, StrideC: 63), seed++);
            }
    }

    [Test]
    public void SharedC_AppliesTheEntriesInOrder()
    {
        // Stride 0 on C: C = alpha A_b B_b + beta C for b = 0, 1, 2 in turn (the reference does the same).
        Check(new GemmSpec(false, true, 9, 19, 11, Batch: 3, StrideA: 99, StrideB: 209, StrideC: 0, Beta: 0.5f), 300);
        Check(new GemmSpec(true, false, 70, 40, 300, Batch: 3, StrideA: 21000, StrideB: 12000, StrideC: 0, Beta: 1f), 301);
    }

    [Test]
    public void ZeroK_ScalesC()
    {
        var c = Rand.Uniform(400, 12);
        Assert.That(Fast(new GemmSpec(false, false, 3, 4, 0, Beta: 0.5f), [0f], [0f], c), Is.EqualTo(c.Select(v => v * 0.5f).ToArray()));
        Assert.That(Fast(new GemmSpec(false, false, 3, 4, 0), [0f], [0f], c), Is.All.EqualTo(0f));
    }

    [Test]
    public void LargeBlocks_AcrossKcMcAndNcEdges()
    {
        // K over two KC blocks, M over MC, N over NC: the beta of later K blocks, and every edge.
        Check(new GemmSpec(false, false, SgemmDriver.MC + 13, 40, SgemmDriver.KC * 2 + 5, Alpha: 1.25f, Beta: -0.5f), 500);
        Check(new GemmSpec(true, true, 150, 70, SgemmDriver.KC + 1), 501);
        Check(new GemmSpec(false, true, 7, SgemmDriver.NC + 21, 9, Beta: 1f), 502);
    }

    [Test]
    public void Results_AreBitwiseEqual_ForEveryThreadCount()
    {
        foreach (var g in new[]
                 {
                     new GemmSpec(false, false, 200, 150, 600, Beta: 0.5f),
                     new GemmSpec(true, true, 61, 300, 257),
                     new GemmSpec(false, true, 31, 47, 700, Batch: 3, StrideA: 31 * 700, StrideB: 47 * 700, StrideC: 31 * 47),
                 })
        {
            var (la, lb, lc) = Lengths(g);
            var a = Rand.Normal(600, la);
            var b = Rand.Normal(601, lb);
            var c = Rand.Normal(602, lc);
            var one = Fast(g, a, b, c, threads: 1);
            foreach (int threads in new[] { 2, 3, 5, 8 })
                Assert.That(Fast(g, a, b, c, threads), Is.EqualTo(one), $"{g} on {threads} threads");
            Assert.That(Fast(g, a, b, c, threads: 2), Is.EqualTo(one), $"{g}: a second run");
        }
    }

    [Test]
    public void PortableKernel_MatchesTheReference()
    {
        SgemmKernel.ForcePortable = true;
        try
        {
            int seed = 700;
            foreach (bool ta in new[] { false, true })
                foreach (bool tb in new[] { false, true })
                    foreach (var (m, n, k) in new[] { (1, 1, 1), (17, 33, 65), (129, 3, 17), (20, 40, 300) })
                        Check(new GemmSpec(ta, tb, m, n, k, Alpha: 0.5f, Beta: 0.25f), seed++);
        }
        finally
        {
            SgemmKernel.ForcePortable = false;
        }
    }

    [Test]
    public void SplitK_WeightGradientShapes_MatchTheReference_OnEveryThreadCount()
    {
        // dW = dY^T X with a narrow output and a long K: K is cut into fixed blocks summed in order
        // (SgemmDriver.UsesSplitK). Edges: M not a multiple of 6, N of 16, K of KC; alpha, beta, batches.
        int kc = SgemmDriver.KC, seed = 950;
        foreach (var g in new[]
                 {
                     new GemmSpec(true, false, 24, 24, 32 * kc),
                     new GemmSpec(true, false, 13, 37, 8 * kc + 5, Alpha: 0.5f, Beta: 0.75f),
                     new GemmSpec(true, false, 128, 48, 9 * kc - 1, Beta: 1f),
                     new GemmSpec(true, false, 7, 20, 8 * kc, Batch: 2, StrideA: 8 * kc * 7, StrideB: 8 * kc * 20, StrideC: 7 * 20),
                 })
        {
            Check(g, seed);
            var (la, lb, lc) = Lengths(g);
            var a = Rand.Normal(seed, la);
            var b = Rand.Normal(seed + 1, lb);
            var c = Rand.Normal(seed + 2, lc);
            seed += 3;
            var one = Fast(g, a, b, c, threads: 1);
            foreach (int threads in new[] { 2, 3, 8 })
                Assert.That(Fast(g, a, b, c, threads), Is.EqualTo(one), $"{g} on {threads} threads");
        }
    }

    [Test]
    public void DirectAndPackedPaths_AreBitwiseEqual()
    {
        // Small products skip packing (SgemmDriver.UsesDirect); both paths sum each element in the
        // same K order with FMA, so they must agree to the bit, edges (masked lanes, short rows) included.
        int seed = 900;
        foreach (bool ta in new[] { false, true })
            foreach (bool tb in new[] { false, true })
                foreach (var (m, n, k) in new[] { (64, 24, 16), (16, 64, 24), (5, 7, 3), (128, 128, 256), (6, 16, 9), (13, 40, 33) })
                    foreach (float beta in new[] { 0f, 0.5f })
                    {
                        var g = new GemmSpec(ta, tb, m, n, k, Batch: 3, StrideA: m * k, StrideB: k * n, StrideC: m * n, Alpha: 0.7f, Beta: beta);
                        var (la, lb, lc) = Lengths(g);
                        var a = Rand.Normal(seed, la);
                        var b = Rand.Normal(seed + 1, lb);
                        var c = Rand.Normal(seed + 2, lc);
                        seed += 3;
                        var direct = Fast(g, a, b, c);
                        SgemmDriver.ForcePacked = true;
                        try { Assert.That(direct, Is.EqualTo(Fast(g, a, b, c)), $"{g}: direct vs packed"); }
                        finally { SgemmDriver.ForcePacked = false; }
                        Check(g, seed);
                    }
    }

    /// <summary>
    /// 16-bit A and B, widened block by block while packing (SgemmDriver.RunHalf), give the packed path's Float32 GEMM on
    /// the widened operands bit for bit: several K blocks (K > KC), M blocks (M > MC), every transpose, a batch with a
    /// shared A and offsets, beta, one and two threads.
    /// </summary>
    [TestCase(DType.BFloat16, false, false, 150, 37, 600)]
    [TestCase(DType.BFloat16, false, false, 13, 20, 603)]   // bfloat16 A packed as it is widened: a partial panel, K blocks with tails
    [TestCase(DType.BFloat16, true, true, 150, 37, 600)]
    [TestCase(DType.Float16, true, false, 150, 37, 600)]
    [TestCase(DType.Float16, false, true, 150, 37, 600)]
    public void SixteenBitOperandsWidenedWhilePackingGiveThePackedFloat32Result(DType dt, bool transA, bool transB, int m, int n, int k)
    {
        int batch = 2;
        var g = new GemmSpec(transA, transB, m, n, k, batch, 0, (long)k * n + 5, (long)m * n, Alpha: 0.75f, Beta: 0.5f, OffsetA: 3, OffsetB: 1, OffsetC: 2);
        var (la, lb, lc) = Lengths(g);
        // values with at most 8 (bfloat16) or 11 (float16) significant bits: their 16-bit and Float32 forms are equal
        float[] Exact(int seed, int length) => Tensor.FromArray(Rand.Uniform(seed, length), new Shape(length), Device).To(dt).ToArray();
        var a = Exact(31, la);
        var b = Exact(32, lb);
        var c = Rand.Uniform(33, lc);
        foreach (int threads in new[] { 1, 2 })
        {
            var got = OnThreads(threads, () =>
            {
                using var ta = T(a, la).To(dt);
                using var tb = T(b, lb).To(dt);
                using var tc = T(c, lc);
                CpuBackend.Instance.Gemm(g, ta, tb, tc);
                return tc.ToArray();
            });
            SgemmDriver.ForcePacked = true;
            float[] want;
            try { want = Fast(g, a, b, c, threads); }
            finally { SgemmDriver.ForcePacked = false; }
            Assert.That(got, Is.EqualTo(want), $"{dt} {g}, {threads} thread(s)");
        }
    }

    /// <summary>
    /// A Float32 operand beside a 16-bit one is rounded to that type block by block while packing (autocast's linear weights):
    /// bit for bit the GEMM on the operand cast first, with either operand Float32, transposes, a batch with offsets, one and
    /// two threads, and a batch summed into one C (the path that widens whole operands).
    /// </summary>
    [TestCase(DType.BFloat16, true, false, false)]
    [TestCase(DType.BFloat16, false, true, true)]
    [TestCase(DType.Float16, false, false, true)]
    [TestCase(DType.Float16, true, true, false)]
    public void AFloat32OperandBesideA16BitOneIsRoundedWhilePacking(DType dt, bool floatA, bool transA, bool transB)
    {
        int m = 150, n = 37, k = 600;
        foreach (var g in new[]
        {
            new GemmSpec(transA, transB, m, n, k, 2, 0, (long)k * n + 5, (long)m * n, Alpha: 0.75f, Beta: 0.5f, OffsetA: 3, OffsetB: 1, OffsetC: 2),
            new GemmSpec(transA, transB, m, n, 70, 3, (long)m * 70, (long)70 * n, 0, Beta: 1f),
        })
        {
            var (la, lb, lc) = Lengths(g);
            var a = Rand.Uniform(41, la);
            var b = Rand.Uniform(42, lb);
            var c = Rand.Uniform(43, lc);
            foreach (int threads in new[] { 1, 2 })
            {
                var (got, want) = OnThreads(threads, () =>
                {
                    using var a32 = T(a, la);
                    using var b32 = T(b, lb);
                    using var a16 = a32.To(dt);
                    using var b16 = b32.To(dt);
                    using var mixed = T(c, lc);
                    using var cast = T(c, lc);
                    CpuBackend.Instance.Gemm(g, floatA ? a32 : a16, floatA ? b16 : b32, mixed);
                    CpuBackend.Instance.Gemm(g, a16, b16, cast);
                    return (mixed.ToArray(), cast.ToArray());
                });
                Assert.That(got, Is.EqualTo(want), $"{dt} {g}, {(floatA ? "A" : "B")} Float32, {threads} thread(s)");
            }
        }
    }

    /// <summary>
    /// A 16-bit C is rounded block by block as each block's last K step completes: bit for bit the Float32 C (read widened
    /// where beta reads it) rounded once, over several K, M and N blocks, a batch with offsets, one and two threads.
    /// </summary>
    [TestCase(DType.BFloat16, 0f)]
    [TestCase(DType.BFloat16, 0.5f)]
    [TestCase(DType.Float16, 0.5f)]
    public void ASixteenBitCIsRoundedBlockByBlockAsTheFloat32ResultRoundedOnce(DType dt, float beta)
    {
        int m = 150, n = 300, k = 600, batch = 2;
        var g = new GemmSpec(false, true, m, n, k, batch, (long)m * k, (long)n * k, (long)m * n + 3, Beta: beta, OffsetA: 1, OffsetC: 2);
        var (la, lb, lc) = Lengths(g);
        var a = Rand.Uniform(51, la);
        var b = Rand.Uniform(52, lb);
        var c = Rand.Uniform(53, lc);
        foreach (int threads in new[] { 1, 2 })
        {
            var (got, want) = OnThreads(threads, () =>
            {
                using var a16 = T(a, la).To(dt);
                using var b16 = T(b, lb).To(dt);
                using var c16 = T(c, lc).To(dt);
                using var c32 = c16.To(DType.Float32);
                CpuBackend.Instance.Gemm(g, a16, b16, c16);
                CpuBackend.Instance.Gemm(g, a16, b16, c32);
                using var rounded = c32.To(dt);
                return (c16.ToArray(), rounded.ToArray());
            });
            Assert.That(got, Is.EqualTo(want), $"{dt} beta {beta}, {threads} thread(s)");
        }
    }

    [Test]
    public void GemmThreads_RejectsZero() =>
        Assert.That(() => CpuBackend.Instance.GemmThreads = 0, Throws.TypeOf<ArgumentOutOfRangeException>());
}
