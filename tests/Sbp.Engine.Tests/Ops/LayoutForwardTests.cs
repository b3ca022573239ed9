using Sbp.Engine.Tests.Support;
using Sbp.Tensors;

namespace Sbp.Engine.Tests.OpTests;

/// <summary>Forward values of the layout ops against float64 index arithmetic (all exact copies or sums).</summary>
public class LayoutForwardTests : DeviceTest
{
    static readonly float[] X = Rand.Uniform(141, 3 * 5 * 7);
    static RefTensor RefX => RefTensor.Of(X, 3, 5, 7);

    [TestCase(new[] { 5, 21 }, new[] { 5, 21 })]
    [TestCase(new[] { -1, 7 }, new[] { 15, 7 })]
    [TestCase(new[] { 105 }, new[] { 105 })]
    public void ReshapeKeepsTheRowMajorOrder(int[] target, int[] expectedShape)
    {
        var y = Sbp.Ops.Reshape(T(X, 3, 5, 7), target);
        Assert.That(y.Shape, Is.EqualTo(new Shape(expectedShape)));
        Assert.That(y.ToArray(), Is.EqualTo(X));
    }

    [TestCase(new[] { 2, 0, 1 })]
    [TestCase(new[] { 1, 2, 0 })]
    [TestCase(new[] { 0, 2, 1 })]
    [TestCase(new[] { -1, 0, -2 })]
    [TestCase(new[] { 0, 1, 2 })]
    public void PermuteMatchesReference(int[] perm) =>
        Ref.AssertClose("permute", Sbp.Ops.Permute(T(X, 3, 5, 7), perm), Ref.Permute(RefX, perm), 0, 0);

    [Test]
    public void PermuteMovingOnlyUnitAxes_IsAViewWithTheReferenceValues()
    {
        // Attention's head split with one head: [B, N, 1, Dh] -> [B, 1, N, Dh] moves no element.
        using var x = T(X, 3, 5, 1, 7);
        long before = Device.Pool.InUseBytes;
        using var y = Sbp.Ops.Permute(x, 0, 2, 1, 3);
        Assert.That(Device.Pool.InUseBytes, Is.EqualTo(before), "no new memory");
        Assert.That(y.Shape, Is.EqualTo(new Shape(3, 1, 5, 7)));
        Ref.AssertClose("permute", y, Ref.Permute(RefTensor.Of(X, 3, 5, 1, 7), [0, 2, 1, 3]), 0, 0);
    }

    [TestCase(0, 2)]
    [TestCase(-1, -2)]
    public void TransposeMatchesReference(int dim0, int dim1)
    {
        var perm = new[] { 0, 1, 2 };
        int a = (dim0 + 3) % 3, b = (dim1 + 3) % 3;
        (perm[a], perm[b]) = (perm[b], perm[a]);
        Ref.AssertClose("transpose", Sbp.Ops.Transpose(T(X, 3, 5, 7), dim0, dim1), Ref.Permute(RefX, perm), 0, 0);
    }

    [Test]
    public void LargeOddPermuteMatchesReference()
    {
        // 9 * 65 * 67 elements: above the parallel threshold.
        var x = Rand.Uniform(142, 9 * 65 * 67);
        Ref.AssertClose("permute", Sbp.Ops.Permute(T(x, 9, 65, 67), 2, 0, 1), Ref.Permute(RefTensor.Of(x, 9, 65, 67), [2, 0, 1]), 0, 0);
    }

    [TestCase(0, 1, 2)]
    [TestCase(1, 2, 3)]
    [TestCase(-1, 0, 7)]
    [TestCase(2, 6, 1)]
    [TestCase(1, 3, 0)]
    public void SliceMatchesReference(int dim, int start, int length) =>
        Ref.AssertClose("slice", Sbp.Ops.Slice(T(X, 3, 5, 7), dim, start, length), Ref.Slice(RefX, dim, start, length), 0, 0);

    [TestCase(0)]
    [TestCase(1)]
    [TestCase(-1)]
    public void ConcatMatchesReference(int dim)
    {
        int[] Shape(int size) => dim switch { 0 => [size, 3, 5], 1 => [3, size, 5], _ => [3, 5, size] };
        int[] sizes = [1, 2, 4];
        var parts = sizes.Select((s, i) => Rand.Uniform(143 + i, Ref.Numel(Shape(s)))).ToArray();
        var y = Sbp.Ops.Concat(parts.Select((p, i) => T(p, Shape(sizes[i]))).ToArray(), dim);
        Ref.AssertClose("concat", y, Ref.Concat(parts.Select((p, i) => RefTensor.Of(p, Shape(sizes[i]))).ToArray(), dim), 0, 0);
    }

    [TestCase(new[] { 3, 1 }, new[] { 2, 3, 5 })]
    [TestCase(new[] { 5 }, new[] { 3, 5 })]
    [TestCase(new int[0], new[] { 3, 5 })]
    [TestCase(new[] { 1, 5, 1 }, new[] { 3, 5, 7 })]
    public void BroadcastToMatchesReference(int[] from, int[] to)
    {
        var x = Rand.Uniform(146, Ref.Numel(from));
        Ref.AssertClose("broadcast_to", Sbp.Ops.BroadcastTo(T(x, from), new Shape(to)), Ref.BroadcastTo(RefTensor.Of(x, from), to), 0, 0);
    }

    [TestCase(new[] { 2, 3, 5 }, new[] { 3, 1 })]
    [TestCase(new[] { 2, 3, 5 }, new[] { 5 })]
    [TestCase(new[] { 2, 3, 5 }, new int[0])]
    [TestCase(new[] { 2, 3, 5 }, new[] { 2, 1, 5 })]
    [TestCase(new[] { 2, 3, 5 }, new[] { 1, 3, 1 })]
    [TestCase(new[] { 3, 5 }, new[] { 3, 5 })]
    public void SumToMatchesReference(int[] from, int[] to)
    {
        var x = Rand.Uniform(147, Ref.Numel(from));
        Ref.AssertClose("sum_to", Sbp.Ops.SumTo(T(x, from), new Shape(to)), Ref.SumTo(RefTensor.Of(x, from), to), 1e-5, 1e-6);
    }
}
