using Sbp.Engine.Tests.Support;
using Sbp.Tensors;

namespace Sbp.Engine.Tests.OpTests;

/// <summary>Forward values of the one-input functions against float64.</summary>
public class UnaryForwardTests : DeviceTest
{
    public static IEnumerable<TestCaseData> Cases()
    {
        TestCaseData Case(string name, Func<Tensor, Tensor> f, Func<double, double> reference, float[] x, double atol = 1e-6) =>
            new TestCaseData(f, reference, x, atol).SetArgDisplayNames(name);
        yield return Case("exp", Sbp.Ops.Exp, Math.Exp, Rand.Uniform(71, 35, -5f, 5f));
        yield return Case("log", Sbp.Ops.Log, Math.Log, Rand.Positive(72, 35, 0.01f, 50f));
        yield return Case("sqrt", Sbp.Ops.Sqrt, Math.Sqrt, Rand.Positive(73, 35, 0.01f, 50f));
        yield return Case("pow(x, 2)", x => Sbp.Ops.Pow(x, 2f), v => v * v, Rand.Uniform(74, 35, -3f, 3f));
        yield return Case("pow(x, 3)", x => Sbp.Ops.Pow(x, 3f), v => v * v * v, Rand.Uniform(75, 35, -3f, 3f));
        yield return Case("pow(x, 0.5)", x => Sbp.Ops.Pow(x, 0.5f), Math.Sqrt, Rand.Positive(76, 35, 0.01f, 9f));
        yield return Case("pow(x, -1.5)", x => Sbp.Ops.Pow(x, -1.5f), v => Math.Pow(v, -1.5), Rand.Positive(77, 35, 0.1f, 9f));
        yield return Case("relu", Sbp.Ops.Relu, v => Math.Max(v, 0.0), [.. Rand.Uniform(78, 33), 0f, -0f]);
        // GELU: absolute tolerance 1e-5 over [-6, 6] and the tails (x Phi(x) -> 0 or x).
        yield return Case("gelu (erf)", x => Sbp.Ops.Gelu(x), Ref.Gelu, [.. Rand.Uniform(79, 45, -6f, 6f), 0f, -10f, 10f, -0.5f, 1e-3f], atol: 1e-5);
        yield return Case("gelu (tanh)", x => Sbp.Ops.Gelu(x, tanhApproximation: true), Ref.GeluTanh, [.. Rand.Uniform(80, 45, -6f, 6f), 0f, -10f, 10f, -0.5f, 1e-3f], atol: 1e-5);
    }

    [TestCaseSource(nameof(Cases))]
    public void UnaryMatchesFloat64(Func<Tensor, Tensor> f, Func<double, double> reference, float[] x, double atol)
    {
        int[] shape = [x.Length / 5, 5];
        Ref.AssertClose(TestContext.CurrentContext.Test.Name, f(T(x, shape)), Ref.Map(RefTensor.Of(x, shape), reference), rtol: 1e-5, atol: atol);
    }

    [Test]
    public void GeluErfAndTanhFormsDifferByTheApproximationError()
    {
        // The two forms are different functions: close (max gap about 5e-4 near |x| = 2) but not equal.
        var x = Rand.Uniform(81, 55, -4f, 4f);
        var erf = Sbp.Ops.Gelu(T(x, 5, 11)).ToArray();
        var tanh = Sbp.Ops.Gelu(T(x, 5, 11), tanhApproximation: true).ToArray();
        var gap = erf.Zip(tanh, (a, b) => Math.Abs(a - b)).Max();
        Assert.That(gap, Is.GreaterThan(1e-5).And.LessThan(1e-3));
    }

    [TestCase(false)]
    [TestCase(true)]
    public void BiasGelu_EqualsGeluOfTheSum_Bitwise(bool tanh)
    {
        // 3 x 37 rows: vector lanes and a scalar tail per row.
        var x = Rand.Uniform(82, 3 * 2 * 37, -6f, 6f);
        var b = Rand.Uniform(83, 37, -1f, 1f);
        var fused = Sbp.Ops.BiasGelu(T(x, 3, 2, 37), T(b, 37), tanh).ToArray();
        var separate = Sbp.Ops.Gelu(Sbp.Ops.Add(T(x, 3, 2, 37), T(b, 37)), tanh).ToArray();
        Assert.That(fused, Is.EqualTo(separate));
    }

    [Test]
    public void BiasGelu_OfNoChannelsOrRows_IsEmpty()
    {
        Assert.That(Sbp.Ops.BiasGelu(T([], 3, 0), T([], 0)).Shape, Is.EqualTo(new Shape(3, 0)));
        Assert.That(Sbp.Ops.BiasGelu(T([], 0, 4), T(new float[4], 4)).Shape, Is.EqualTo(new Shape(0, 4)));
    }

    [Test]
    public void BiasGelu_RefusesABiasThatIsNotOnePerChannel()
    {
        var e = Assert.Throws<ShapeMismatchException>(() => Sbp.Ops.BiasGelu(T(new float[6], 2, 3), T(new float[2], 2)));
        Assert.That(e!.Message, Does.Contain("bias_gelu").And.Contain("[2]").And.Contain("[2, 3]"));
    }

    [TestCase(0.0, 0.0)]
    [TestCase(0.1, 0.1124629160182849)]
    [TestCase(0.5, 0.5204998778130465)]
    [TestCase(1.0, 0.8427007929497149)]
    [TestCase(-1.5, -0.9661051464753108)]
    [TestCase(2.0, 0.9953222650189527)]
    [TestCase(3.5, 0.9999992569016276)]
    [TestCase(5.0, 0.9999999999984626)]
    public void ReferenceErfIsAccurate(double x, double expected)
    {
        // The reference of the erf-form GELU is only as good as this series.
        Assert.That(Ref.Erf(x), Is.EqualTo(expected).Within(1e-14));
    }
}
