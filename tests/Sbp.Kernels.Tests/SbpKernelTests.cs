using Sbp.Kernels.Tests.Support;
using Sbp.PtxSim;

namespace Sbp.Kernels.Tests;

/// <summary>kernels/sbp.ptx: gather (IndexSelect along a dim) and scatter-add (IndexAdd), plain and x4.</summary>
public sealed class SbpKernelTests : KernelTest
{
    // outer, n (size along the SBP dim), inner, kept, block, max blocks
    [TestCase(3, 7, 5, 4, 32u, 2u)]
    [TestCase(2, 9, 1, 5, 64u, 1u)]
    [TestCase(4, 16, 13, 9, 128u, 3u)]
    [TestCase(1, 5, 37, 5, 256u, 8u)]
    [TestCase(5, 3, 3, 7, 96u, 2u)]         // repeated indices (kept > n): gather allows them
    public void GatherMatchesIndexSelect(int outer, int n, int inner, int kept, uint block, uint maxBlocks)
    {
        var x = Rand.Uniform(1, outer * n * inner);
        var idx = kept <= n ? Rand.DistinctInts(2, n, kept) : Rand.Ints(2, kept, 0, n);
        var expected = Empty(outer, kept, inner);
        Device.Backend.IndexSelect(T(x, outer, n, inner), 1, I(idx, kept), expected);

        ulong y = Gpu.Poisoned(outer * kept * inner);
        Gpu.Launch("gather_f32", SimGpu.Grid(outer * kept * inner, block, maxBlocks), block,
            Ptr(Gpu.Upload(x)), Ptr(Gpu.Upload(idx)), Ptr(y), U32(outer), U32(n), U32(kept), U32(inner));
        Check.Exact(expected.ToArray(), Gpu.Download(y, outer * kept * inner), "gather_f32");
    }

    [TestCase(3, 7, 8, 4, 32u, 2u)]
    [TestCase(2, 10, 4, 3, 64u, 1u)]
    [TestCase(5, 6, 20, 5, 128u, 3u)]
    [TestCase(2, 33, 36, 17, 64u, 4u)]
    public void GatherX4MatchesIndexSelectWithFewerRequests(int outer, int n, int inner, int kept, uint block, uint maxBlocks)
    {
        var x = Rand.Uniform(3, outer * n * inner);
        var idx = Rand.DistinctInts(4, n, kept);
        int total = outer * kept * inner;
        var expected = Empty(outer, kept, inner);
        Device.Backend.IndexSelect(T(x, outer, n, inner), 1, I(idx, kept), expected);

        ulong px = Gpu.Upload(x), pi = Gpu.Upload(idx), y4 = Gpu.Poisoned(total), y1 = Gpu.Poisoned(total);
        var v4 = Gpu.Launch("gather_f32x4", SimGpu.Grid(total / 4, block, maxBlocks), block,
            Ptr(px), Ptr(pi), Ptr(y4), U32(outer), U32(n), U32(kept), U32(inner));
        var v1 = Gpu.Launch("gather_f32", SimGpu.Grid(total, block, maxBlocks), block,
            Ptr(px), Ptr(pi), Ptr(y1), U32(outer), U32(n), U32(kept), U32(inner));
        Check.Exact(expected.ToArray(), Gpu.Download(y4, total), "gather_f32x4");
        Check.Exact(expected.ToArray(), Gpu.Download(y1, total), "gather_f32");

        Assert.That(v4.InstructionsByKind.GetValueOrDefault("ld.global.v4.f32"), Is.GreaterThan(0), "gather_f32x4 issues 16-byte loads");
        Assert.That(v4.InstructionsByKind.GetValueOrDefault("st.global.v4.f32"), Is.GreaterThan(0), "gather_f32x4 issues 16-byte stores");
        Assert.That(v4.BytesStored, Is.EqualTo(v1.BytesStored).And.EqualTo(4L * total), "both store the output once");
        Assert.That(v4.GlobalRequests, Is.LessThanOrEqualTo(v1.GlobalRequests), "the x4 form never needs more warp requests");
        if (total >= 256)
            Assert.That(v4.GlobalRequests * 2, Is.LessThan(v1.GlobalRequests), "with several warps of work, the x4 form needs far fewer warp requests");
    }

    [Test]
    public void GatherWritesNaNForAnOutOfRangeIndexWithoutTouchingMemory()
    {
        int outer = 2, n = 4, inner = 3;
        var x = Rand.Uniform(5, outer * n * inner);
        int[] idx = [1, -1, 4, 2];
        ulong y = Gpu.Zeros(outer * idx.Length * inner);
        Gpu.Launch("gather_f32", 2, 32, Ptr(Gpu.Upload(x)), Ptr(Gpu.Upload(idx)), Ptr(y), U32(outer), U32(n), U32(idx.Length), U32(inner));
        var got = Gpu.Download(y, outer * idx.Length * inner);
        for (int o = 0; o < outer; o++)
            for (int i = 0; i < idx.Length; i++)
                for (int j = 0; j < inner; j++)
                {
                    float v = got[(o * idx.Length + i) * inner + j];
                    if (idx[i] is < 0 or >= 4) Assert.That(v, Is.NaN, $"o {o} i {i} j {j}");
                    else Assert.That(v, Is.EqualTo(x[(o * n + idx[i]) * inner + j]), $"o {o} i {i} j {j}");
                }
    }

    [TestCase("scatter_add_f32", 3, 7, 5, 4, 32u, 2u)]
    [TestCase("scatter_add_f32", 2, 9, 1, 9, 64u, 1u)]
    [TestCase("scatter_add_f32", 4, 16, 13, 9, 128u, 3u)]
    [TestCase("scatter_add_f32x4", 3, 7, 8, 4, 32u, 2u)]
    [TestCase("scatter_add_f32x4", 2, 10, 4, 3, 64u, 1u)]
    [TestCase("scatter_add_f32x4", 2, 33, 36, 17, 64u, 4u)]
    [TestCase("scatter_add_atomic_f32", 3, 7, 5, 4, 32u, 2u)]
    [TestCase("scatter_add_atomic_f32", 4, 16, 13, 9, 128u, 3u)]
    public void ScatterAddMatchesIndexAdd(string entry, int outer, int n, int inner, int kept, uint block, uint maxBlocks)
    {
        var dx0 = Rand.Uniform(6, outer * n * inner);
        var g = Rand.Uniform(7, outer * kept * inner);
        var idx = Rand.DistinctInts(8, n, kept);
        var expected = T(dx0, outer, n, inner);
        Device.Backend.IndexAdd(expected, 1, I(idx, kept), T(g, outer, kept, inner));

        int width = entry.EndsWith("x4", StringComparison.Ordinal) ? 4 : 1;
        ulong dx = Gpu.Upload(dx0);
        Gpu.Launch(entry, SimGpu.Grid(outer * kept * inner / width, block, maxBlocks), block,
            Ptr(Gpu.Upload(g)), Ptr(Gpu.Upload(idx)), Ptr(dx), U32(outer), U32(n), U32(kept), U32(inner));
        // One add per element, as the CPU: bit for bit.
        Check.Exact(expected.ToArray(), Gpu.Download(dx, outer * n * inner), entry);
    }

    [TestCase(3, 5, 7, 12)]
    [TestCase(2, 4, 3, 9)]
    public void ScatterAddAtomicAddsRepeatedIndices(int outer, int n, int inner, int count)
    {
        var dx0 = Rand.Uniform(9, outer * n * inner);
        var g = Rand.Uniform(10, outer * count * inner);
        var idx = Rand.Ints(11, count, 0, n);
        var expected = T(dx0, outer, n, inner);
        Device.Backend.IndexAdd(expected, 1, I(idx, count), T(g, outer, count, inner));

        ulong dx = Gpu.Upload(dx0);
        Gpu.Launch("scatter_add_atomic_f32", 3, 64,
            Ptr(Gpu.Upload(g)), Ptr(Gpu.Upload(idx)), Ptr(dx), U32(outer), U32(n), U32(count), U32(inner));
        // Repeated indices add in the atomics' (seeded) order, the CPU in index order. Either sum of k terms is within
        // (k - 1) 2^-24 sum|terms| of the exact one (Higham 4.2), so the two within twice that; terms lie in [-1, 1].
        int k = 1 + idx.GroupBy(i => i).Max(g => g.Count());
        double atol = 2 * (k - 1) * Math.ScaleB(1.0, -24) * k;
        Check.Close(expected.ToArray(), Gpu.Download(dx, outer * n * inner), 0, atol, "scatter_add_atomic_f32");
    }

    [TestCase("scatter_add_f32")]
    [TestCase("scatter_add_f32x4")]
    [TestCase("scatter_add_atomic_f32")]
    public void ScatterAddSkipsAnOutOfRangeIndex(string entry)
    {
        int outer = 2, n = 3, inner = 4;
        int[] idx = [2, 7, -3];
        var dx0 = Rand.Uniform(12, outer * n * inner);
        var g = Rand.Uniform(13, outer * idx.Length * inner);
        var expected = (float[])dx0.Clone();
        for (int o = 0; o < outer; o++)
            for (int j = 0; j < inner; j++)
                expected[(o * n + 2) * inner + j] += g[(o * idx.Length + 0) * inner + j];
        ulong dx = Gpu.Upload(dx0);
        Gpu.Launch(entry, 1, 32, Ptr(Gpu.Upload(g)), Ptr(Gpu.Upload(idx)), Ptr(dx), U32(outer), U32(n), U32(idx.Length), U32(inner));
        Check.Exact(expected, Gpu.Download(dx, outer * n * inner), entry);
    }

    [Test]
    public void AnOutputBufferThatIsTooSmallIsAMemoryViolation()
    {
        int outer = 2, n = 5, inner = 3, kept = 4;
        ulong y = Gpu.Alloc(4L * (outer * kept * inner - 1));   // one float short
        Assert.Throws<PtxMemoryViolationException>(() =>
            Gpu.Launch("gather_f32", 1, 64, Ptr(Gpu.Upload(Rand.Uniform(14, outer * n * inner))), Ptr(Gpu.Upload(Rand.DistinctInts(15, n, kept))),
                Ptr(y), U32(outer), U32(n), U32(kept), U32(inner)));
    }
}
