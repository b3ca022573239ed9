using Sbp.Backends.Cpu;
using Sbp.Engine.Tests.Support;
using Sbp.Tensors;

namespace Sbp.Engine.Tests.Backends.Cpu;

/// <summary>
/// CpuBackend IndexSelect / IndexAdd on the shapes the fast paths take (merged runs of
/// consecutive indices, distinct and repeated indices, long rows split into column blocks,
/// rows of one element, several outer slices) against plain loops.
/// </summary>
public sealed class GatherTests : DeviceTest
{
    static IEnumerable<(int Outer, int Size, int Inner, int[] Indices)> Cases()
    {
        yield return (3, 40, 5, [0, 1, 2, 3, 10, 11, 12, 39, 5, 6]);          // runs, then jumps
        yield return (2, 50, 1, [49, 48, 0, 1, 2, 3, 4, 7]);                  // inner 1
        yield return (7, 13, 1, [.. Enumerable.Range(0, 5000).Select(i => i * 7919 % 13)]);   // inner 1, repeated, split between workers
        yield return (1, 300, 96, Rand.DistinctInts(1, 300, 150).Order().ToArray()); // sorted kept tokens
        yield return (2, 64, 33, Rand.DistinctInts(2, 64, 40));               // shuffled distinct
        yield return (2, 20, 7, [3, 3, 5, 3, 19, 0, 5]);                      // repeated indices
        yield return (1, 9, 5000, [1, 4, 1, 8, 4, 4]);                        // repeated, long rows (column blocks)
        yield return (3, 9, 2500, [2, 3, 4, 8, 0]);                           // distinct, long rows
        yield return (4, 5, 3, []);                                           // nothing selected
    }

    /// <summary>
    /// SBP's saved copies (IndexSelectForLater) stream long runs past the caches and copy short ones:
    /// destinations over 1 MiB with short rows (attention's 24 floats), long rows, and long rows whose
    /// starts are not 32-byte aligned, against IndexSelect, exactly.
    /// </summary>
    [TestCase(512, 64, 24)]
    [TestCase(16, 8, 6144)]
    [TestCase(16, 9, 3001)]
    public void IndexSelectForLater_EqualsIndexSelect(int outer, int size, int inner)
    {
        var idx = Enumerable.Range(0, size).Where(r => r % 2 == 1).Concat([0, 1, 2]).ToArray();
        var src = Rand.Uniform(outer + inner, outer * size * inner);
        using var s = T(src, outer, size, inner);
        using var i = Idx(idx);
        using var want = Tensor.Zeros(new Shape(outer, idx.Length, inner), Device);
        using var got = Tensor.Zeros(new Shape(outer, idx.Length, inner), Device);
        Assert.That(got.Numel * sizeof(float), Is.GreaterThan(1 << 20), "large enough for the streaming path");
        CpuBackend.Instance.IndexSelect(s, 1, i, want);
        CpuBackend.Instance.IndexSelectForLater(s, 1, i, got);
        Assert.That(got.ToArray(), Is.EqualTo(want.ToArray()));
    }

    [Test]
    public void IndexSelect_MatchesLoops()
    {
        int seed = 1;
        foreach (var (outer, size, inner, idx) in Cases())
        {
            var src = Rand.Uniform(seed++, outer * size * inner);
            using var s = T(src, outer, size, inner);
            using var d = Tensor.Zeros(new Shape(outer, idx.Length, inner), Device);
            using var i = Idx(idx);
            CpuBackend.Instance.IndexSelect(s, 1, i, d);
            var want = new float[outer * idx.Length * inner];
            for (int o = 0; o < outer; o++)
                for (int r = 0; r < idx.Length; r++)
                    for (int c = 0; c < inner; c++)
                        want[(o * idx.Length + r) * inner + c] = src[(o * size + idx[r]) * inner + c];
            Assert.That(d.ToArray(), Is.EqualTo(want), $"outer {outer}, size {size}, inner {inner}, {idx.Length} indices");
        }
    }

    [Test]
    public void IndexAdd_MatchesLoops_WithRepeatedIndicesAddingInOrder()
    {
        int seed = 100;
        foreach (var (outer, size, inner, idx) in Cases())
        {
            var dst = Rand.Uniform(seed++, outer * size * inner);
            var src = Rand.Uniform(seed++, outer * idx.Length * inner);
            using var d = T(dst, outer, size, inner);
            using var s = T(src, outer, idx.Length, inner);
            using var i = Idx(idx);
            CpuBackend.Instance.IndexAdd(d, 1, i, s);
            var want = (float[])dst.Clone();
            for (int o = 0; o < outer; o++)
                for (int r = 0; r < idx.Length; r++)
                    for (int c = 0; c < inner; c++)
                        want[(o * size + idx[r]) * inner + c] += src[(o * idx.Length + r) * inner + c];
            Assert.That(d.ToArray(), Is.EqualTo(want), $"outer {outer}, size {size}, inner {inner}, indices [{string.Join(", ", idx)}]");
        }
    }

    [Test]
    public void OutOfRangeIndex_NamesTheOp()
    {
        using var s = T(new float[6], 2, 3);
        using var d = Tensor.Zeros(new Shape(2, 1), Device);
        using var i = Idx(3);
        Assert.That(() => CpuBackend.Instance.IndexSelect(s, 1, i, d),
            Throws.TypeOf<IndexOutOfRangeException>().With.Message.Contains("index_select").And.Message.Contains("3"));
        Assert.That(() => CpuBackend.Instance.IndexAdd(s, 1, i, d),
            Throws.TypeOf<IndexOutOfRangeException>().With.Message.Contains("index_add"));
    }
}
