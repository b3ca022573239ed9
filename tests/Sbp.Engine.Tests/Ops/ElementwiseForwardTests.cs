using Sbp.Engine.Tests.Support;
using Sbp.Tensors;

namespace Sbp.Engine.Tests.OpTests;

/// <summary>Forward values of the elementwise ops against float64.</summary>
public class ElementwiseForwardTests : DeviceTest
{
    [TestCaseSource(typeof(ElementwiseCases), nameof(ElementwiseCases.OpsTimesShapes))]
    public void BinaryOpMatchesFloat64(string op, int[] shapeA, int[] shapeB)
    {
        var c = ElementwiseCases.Get(op);
        var a = c.A(41, Ref.Numel(shapeA));
        var b = c.B(42, Ref.Numel(shapeB));
        var y = c.Op(T(a, shapeA), T(b, shapeB));
        Ref.AssertClose(op, y, Ref.Zip(RefTensor.Of(a, shapeA), RefTensor.Of(b, shapeB), c.Reference));
    }

    [TestCase("add")]
    [TestCase("sub")]
    [TestCase("mul")]
    [TestCase("div")]
    [TestCase("pow")]
    public void LargeBroadcastRunsInParallelAndMatchesFloat64(string op)
    {
        // 33 * 31 * 127 elements: above the CPU backend's parallel threshold, odd sizes, both operands broadcast.
        var c = ElementwiseCases.Get(op);
        int[] shapeA = [33, 1, 127], shapeB = [31, 1];
        var a = c.A(43, Ref.Numel(shapeA));
        var b = c.B(44, Ref.Numel(shapeB));
        var y = c.Op(T(a, shapeA), T(b, shapeB));
        Ref.AssertClose(op, y, Ref.Zip(RefTensor.Of(a, shapeA), RefTensor.Of(b, shapeB), c.Reference));
    }

    public static IEnumerable<TestCaseData> ScalarForms()
    {
        TestCaseData Case(string name, Func<Tensor, Tensor> f, Func<double, double> reference) =>
            new TestCaseData(f, reference).SetArgDisplayNames(name);
        yield return Case("add(x, 1.7)", x => Sbp.Ops.Add(x, 1.7f), v => v + 1.7f);
        yield return Case("sub(x, 0.3)", x => Sbp.Ops.Sub(x, 0.3f), v => v - 0.3f);
        yield return Case("sub(2.5, x)", x => Sbp.Ops.Sub(2.5f, x), v => 2.5 - v);
        yield return Case("mul(x, -1.3)", x => Sbp.Ops.Mul(x, -1.3f), v => v * -1.3f);
        yield return Case("div(x, 0.7)", x => Sbp.Ops.Div(x, 0.7f), v => v / 0.7f);
        yield return Case("div(1.9, x)", x => Sbp.Ops.Div(1.9f, x), v => 1.9f / v);
        yield return Case("neg", Sbp.Ops.Neg, v => -v);
    }

    [TestCaseSource(nameof(ScalarForms))]
    public void ScalarFormMatchesFloat64(Func<Tensor, Tensor> f, Func<double, double> reference)
    {
        var x = Rand.AwayFromZero(45, 3 * 7, 0.2f, 2f);
        Ref.AssertClose(TestContext.CurrentContext.Test.Name, f(T(x, 3, 7)), Ref.Map(RefTensor.Of(x, 3, 7), reference));
    }

    [Test]
    public void ScalarShapedOperandsGiveAScalarShapedResult()
    {
        var y = Sbp.Ops.Mul(T([1.5f], []), T([-2f], []));
        Assert.That(y.Shape, Is.EqualTo(Shape.Scalar));
        Assert.That(y.Item(), Is.EqualTo(-3f));
    }
}
