using Sbp.Engine.Tests.Support;
using Sbp.Tensors;

namespace Sbp.Engine.Tests.OpTests;

/// <summary>Forward values of sum, mean and max against float64.</summary>
public class ReductionsForwardTests : DeviceTest
{
    Tensor Reduce(string op, float[] x, int[] shape, int[] dims, bool keepDim) => op switch
    {
        "sum" => Sbp.Ops.Sum(T(x, shape), dims, keepDim),
        "mean" => Sbp.Ops.Mean(T(x, shape), dims, keepDim),
        "max" => Sbp.Ops.Max(T(x, shape), dims, keepDim),
        _ => throw new ArgumentOutOfRangeException(nameof(op), op, null),
    };

    static RefTensor Reference(string op, RefTensor x, int[] dims, bool keepDim) => op switch
    {
        "sum" => Ref.Sum(x, dims, keepDim),
        "mean" => Ref.Mean(x, dims, keepDim),
        _ => Ref.Max(x, dims, keepDim),
    };

    [TestCaseSource(typeof(ReductionCases), nameof(ReductionCases.DimsAndKeepDim))]
    public void ReductionMatchesFloat64(string op, int[] dims, bool keepDim)
    {
        int[] shape = [3, 5, 7];
        var x = Rand.Uniform(181, Ref.Numel(shape));
        Ref.AssertClose($"{op} {Ref.Format(dims)}", Reduce(op, x, shape, dims, keepDim), Reference(op, RefTensor.Of(x, shape), dims, keepDim), 1e-5, 1e-5);
    }

    [TestCase("sum", new[] { 1 })]
    [TestCase("sum", new[] { 0, 2 })]
    [TestCase("sum", new[] { 2 })]
    [TestCase("mean", new int[0])]
    [TestCase("max", new[] { 1 })]
    [TestCase("max", new[] { 0, 2 })]
    [TestCase("max", new[] { 2 })]
    public void LargeOddReductionMatchesFloat64(string op, int[] dims)
    {
        // 17 * 65 * 67 elements: parallel over the kept positions.
        int[] shape = [17, 65, 67];
        var x = Rand.Uniform(182, Ref.Numel(shape));
        Ref.AssertClose($"{op} {Ref.Format(dims)}", Reduce(op, x, shape, dims, false), Reference(op, RefTensor.Of(x, shape), dims, false), 1e-5, 1e-4);
    }

    [Test]
    public void AllElementFormsGiveScalarShapedResults()
    {
        var x = Rand.Uniform(183, 15);
        var r = RefTensor.Of(x, 3, 5);
        Ref.AssertClose("sum", Sbp.Ops.Sum(T(x, 3, 5)), Ref.Sum(r, []), 1e-5, 1e-6);
        Ref.AssertClose("mean", Sbp.Ops.Mean(T(x, 3, 5)), Ref.Mean(r, []), 1e-5, 1e-6);
        Ref.AssertClose("max", Sbp.Ops.Max(T(x, 3, 5)), Ref.Max(r, []), 0, 0);
        Assert.That(Sbp.Ops.Sum(T(x, 3, 5)).Shape, Is.EqualTo(Shape.Scalar));
    }

    [Test]
    public void MaxOfAllNegativeValuesIsNotZero()
    {
        // A max that started from 0 instead of -inf would pass random tests centred on 0.
        Ref.AssertClose("max", Sbp.Ops.Max(T([-3f, -1.5f, -2f, -7f, -0.25f, -9f], 2, 3), [1]), new RefTensor([-1.5, -0.25], [2]), 0, 0);
    }
}
