using Sbp.Engine.Tests.Support;
using Sbp.Tensors;

namespace Sbp.Engine.Tests.OpTests;

/// <summary>Finite-difference checks of the one-input functions, each on a domain away from its kinks and poles.</summary>
public class UnaryGradTests
{
    public static IEnumerable<TestCaseData> Cases()
    {
        TestCaseData Case(string name, Func<Tensor, Tensor> f, GradInput x) => new TestCaseData(f, x).SetArgDisplayNames(name);
        yield return Case("exp", Sbp.Ops.Exp, GradInput.Range(51, -1.5f, 1.5f, 3, 7));
        yield return Case("log", Sbp.Ops.Log, GradInput.Positive(52, 3, 7));
        yield return Case("sqrt", Sbp.Ops.Sqrt, GradInput.Positive(53, 3, 7));
        yield return Case("pow(x, 2)", x => Sbp.Ops.Pow(x, 2f), GradInput.Uniform(54, 3, 7));      // integer power: any sign
        yield return Case("pow(x, 3)", x => Sbp.Ops.Pow(x, 3f), GradInput.Positive(55, 3, 7));
        yield return Case("pow(x, 0.5)", x => Sbp.Ops.Pow(x, 0.5f), GradInput.Positive(56, 3, 7));
        yield return Case("pow(x, -1.5)", x => Sbp.Ops.Pow(x, -1.5f), GradInput.Positive(57, 3, 7));
        yield return Case("relu", Sbp.Ops.Relu, GradInput.AwayFromZero(58, 3, 7));                 // |x| >= 0.1, eps 0.01
        yield return Case("gelu (erf)", x => Sbp.Ops.Gelu(x), GradInput.Range(59, -3.5f, 3.5f, 5, 7));
        yield return Case("gelu (tanh)", x => Sbp.Ops.Gelu(x, tanhApproximation: true), GradInput.Range(60, -3.5f, 3.5f, 5, 7));
        yield return Case("neg", Sbp.Ops.Neg, GradInput.Uniform(61, 2, 3, 5));
        yield return Case("exp of [] (scalar-shaped)", Sbp.Ops.Exp, GradInput.Uniform(62));
    }

    [TestCaseSource(nameof(Cases))]
    public void UnaryGradient(Func<Tensor, Tensor> f, GradInput x) =>
        GradCheck.Check(TestContext.CurrentContext.Test.Name, xs => f(xs[0]), x);

    [TestCase(false)]
    [TestCase(true)]
    public void BiasGeluGradient(bool tanh) =>
        GradCheck.Check($"bias_gelu (tanh {tanh})", xs => Sbp.Ops.BiasGelu(xs[0], xs[1], tanh),
            GradInput.Range(63, -3f, 3f, 2, 5, 11), GradInput.Range(64, -0.5f, 0.5f, 11));
}
