using Sbp.Tensors;
using Sbp.Engine.Tests.Support;

namespace Sbp.Engine.Tests.OpTests;

/// <summary>Forward values of matmul and linear against float64 loops.</summary>
public class MatmulForwardTests : DeviceTest
{
    // float32 dot products of length K: absolute error grows with K * max|a||b|.
    const double Rtol = 1e-5, Atol = 1e-5;

    [TestCaseSource(typeof(MatmulCases), nameof(MatmulCases.ShapeCases))]
    public void MatmulMatchesFloat64(int[] shapeA, int[] shapeB)
    {
        var a = Rand.Uniform(111, Ref.Numel(shapeA));
        var b = Rand.Uniform(112, Ref.Numel(shapeB));
        var y = Sbp.Ops.Matmul(T(a, shapeA), T(b, shapeB));
        Ref.AssertClose("matmul", y, Ref.Matmul(RefTensor.Of(a, shapeA), RefTensor.Of(b, shapeB)), Rtol, Atol);
    }

    [TestCase(new[] { 37, 65 }, new[] { 65, 33 })]           // rows GEMM above the parallel threshold
    [TestCase(new[] { 3, 1, 13, 65 }, new[] { 5, 65, 17 })]  // batched, broadcast, parallel
    public void LargeOddMatmulMatchesFloat64(int[] shapeA, int[] shapeB)
    {
        var a = Rand.Uniform(113, Ref.Numel(shapeA));
        var b = Rand.Uniform(114, Ref.Numel(shapeB));
        var y = Sbp.Ops.Matmul(T(a, shapeA), T(b, shapeB));
        Ref.AssertClose("matmul", y, Ref.Matmul(RefTensor.Of(a, shapeA), RefTensor.Of(b, shapeB)), Rtol, 1e-4);
    }

    [TestCase(true)]
    [TestCase(false)]
    public void LinearMatchesFloat64(bool withBias)
    {
        var x = Rand.Uniform(115, 2 * 3 * 5);
        var w = Rand.Uniform(116, 7 * 5);
        var b = Rand.Uniform(117, 7);
        var y = withBias ? Sbp.Ops.Linear(T(x, 2, 3, 5), T(w, 7, 5), T(b, 7)) : Sbp.Ops.Linear(T(x, 2, 3, 5), T(w, 7, 5));
        var expected = Ref.Linear(RefTensor.Of(x, 2, 3, 5), RefTensor.Of(w, 7, 5), withBias ? RefTensor.Of(b, 7) : null);
        Ref.AssertClose("linear", y, expected, Rtol, Atol);
    }

    [Test]
    public void LinearRowsEqualsLinearOnTheSlicedWeight()
    {
        var x = T(Rand.Uniform(117, 2 * 3 * 5), 2, 3, 5);
        var w = T(Rand.Uniform(118, 9 * 5), 9, 5);
        var b = T(Rand.Uniform(119, 9), 9);
        var rows = Sbp.Ops.LinearRows(x, w, b, 3, 4);
        var sliced = Sbp.Ops.Linear(x, Sbp.Ops.Slice(w, 0, 3, 4), Sbp.Ops.Slice(b, 0, 3, 4));
        Assert.That(rows.Shape, Is.EqualTo(new Shape(2, 3, 4)));
        Assert.That(rows.ToArray(), Is.EqualTo(sliced.ToArray()), "the same dot products, read in place");
        Assert.That(() => Sbp.Ops.LinearRows(x, w, b, 7, 3), Throws.InstanceOf<ArgumentOutOfRangeException>().With.Message.Contains("linear_rows"));
    }

    [Test]
    public void LinearEqualsMatmulWithTheTransposedWeight()
    {
        var x = Rand.Uniform(118, 3 * 5);
        var w = Rand.Uniform(119, 7 * 5);
        var viaLinear = Sbp.Ops.Linear(T(x, 3, 5), T(w, 7, 5)).ToArray();
        var viaMatmul = Sbp.Ops.Matmul(T(x, 3, 5), Sbp.Ops.Transpose(T(w, 7, 5), 0, 1)).ToArray();
        Assert.That(viaLinear, Is.EqualTo(viaMatmul).Within(1e-6));
    }
}
