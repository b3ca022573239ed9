using Sbp.Engine.Tests.Support;
using Sbp.Tensors;

namespace Sbp.Engine.Tests.OpTests;

/// <summary>Finite-difference checks of add/sub/mul/div/pow, broadcast shapes included, and the scalar forms.</summary>
public class ElementwiseGradTests
{
    [TestCaseSource(typeof(ElementwiseCases), nameof(ElementwiseCases.OpsTimesShapes))]
    public void BinaryOpGradient(string op, int[] shapeA, int[] shapeB)
    {
        var c = ElementwiseCases.Get(op);
        GradCheck.Check($"{op} {Ref.Format(shapeA)} {Ref.Format(shapeB)}", x => c.Op(x[0], x[1]),
            new GradInput(c.A(11, Ref.Numel(shapeA)), shapeA),
            new GradInput(c.B(12, Ref.Numel(shapeB)), shapeB));
    }

    [TestCase("add", false)]
    [TestCase("add", true)]
    [TestCase("sub", false)]
    [TestCase("sub", true)]
    [TestCase("mul", false)]
    [TestCase("mul", true)]
    [TestCase("div", false)]
    [TestCase("div", true)]
    [TestCase("pow", false)]
    [TestCase("pow", true)]
    public void OnlyOneOperandRequiresGrad(string op, bool firstIsConstant)
    {
        // Exercises the rules' NeedsGrad branches (mul and div save an operand only when needed).
        var c = ElementwiseCases.Get(op);
        int[] shapeA = [3, 1, 5], shapeB = [4, 1];
        var a = new GradInput(c.A(21, Ref.Numel(shapeA)), shapeA);
        var b = new GradInput(c.B(22, Ref.Numel(shapeB)), shapeB);
        GradCheck.Check($"{op} (constant {(firstIsConstant ? "a" : "b")})", x => c.Op(x[0], x[1]),
            firstIsConstant ? a.Constant() : a, firstIsConstant ? b : b.Constant());
    }

    public static IEnumerable<TestCaseData> ScalarForms()
    {
        TestCaseData Case(string name, Func<Tensor, Tensor> f, bool positive = false) =>
            new TestCaseData(f, positive).SetArgDisplayNames(name);
        yield return Case("add(x, 1.7)", x => Sbp.Ops.Add(x, 1.7f));
        yield return Case("sub(x, 0.3)", x => Sbp.Ops.Sub(x, 0.3f));
        yield return Case("sub(2.5, x)", x => Sbp.Ops.Sub(2.5f, x));
        yield return Case("mul(x, -1.3)", x => Sbp.Ops.Mul(x, -1.3f));
        yield return Case("div(x, 0.7)", x => Sbp.Ops.Div(x, 0.7f));
        yield return Case("div(1.9, x)", x => Sbp.Ops.Div(1.9f, x), positive: true);
        yield return Case("div(-0.6, x)", x => Sbp.Ops.Div(-0.6f, x), positive: true);
        yield return Case("neg", Sbp.Ops.Neg);
        yield return Case("operators", x => (2f - x) * 3f + x / 4f - (-x) * x + 1f);
    }

    [TestCaseSource(nameof(ScalarForms))]
    public void ScalarFormGradient(Func<Tensor, Tensor> f, bool positive)
    {
        var x = positive ? GradInput.Positive(31, 3, 7) : GradInput.Uniform(31, 3, 7);
        GradCheck.Check(TestContext.CurrentContext.Test.Name, xs => f(xs[0]), x);
    }
}
