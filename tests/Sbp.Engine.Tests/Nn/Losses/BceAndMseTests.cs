using Sbp.Autograd;
using Sbp.Engine.Tests.Support;
using Sbp.Tensors;

namespace Sbp.Engine.Tests.Nn.Losses;

/// <summary>Ops.BinaryCrossEntropyWithLogits (with pos_weight, extreme logits) and Ops.MseLoss.</summary>
public class BceAndMseTests : DeviceTest
{
    const int R = 3, C = 5;
    static readonly float[] PosWeight = [0.5f, 2f, 1f, 3f, 0.25f];

    /// <summary>The textbook definition in float64: -(pw t log sigmoid(x) + (1 - t) log(1 - sigmoid(x))).</summary>
    static RefTensor Reference(float[] x, float[] t, int[] shape, float[]? posWeight, Reduction reduction)
    {
        int last = shape[^1];
        var losses = new double[x.Length];
        for (int i = 0; i < x.Length; i++)
        {
            double s = 1 / (1 + Math.Exp(-(double)x[i]));
            double pw = posWeight is null ? 1 : posWeight[i % last];
            losses[i] = -(pw * t[i] * Math.Log(s) + (1 - t[i]) * Math.Log(1 - s));
        }
        return reduction switch
        {
            Reduction.None => new RefTensor(losses, shape),
            Reduction.Sum => new RefTensor([losses.Sum()], []),
            _ => new RefTensor([losses.Average()], []),
        };
    }

    static IEnumerable<TestCaseData> Cases()
    {
        foreach (var withPosWeight in new[] { false, true })
            foreach (var reduction in new[] { Reduction.Mean, Reduction.Sum, Reduction.None })
                yield return new TestCaseData(withPosWeight, reduction);
    }

    static Tensor Bce(Tensor x, Tensor t, float[]? posWeight, Reduction reduction) =>
        Ops.BinaryCrossEntropyWithLogits(x, t,
            posWeight is null ? null : Tensor.FromArray(posWeight, new Shape(posWeight.Length), x.Device), reduction);

    [TestCaseSource(nameof(Cases))]
    public void BceForwardMatchesFloat64(bool withPosWeight, Reduction reduction)
    {
        var x = Rand.Uniform(1, R * C, -4f, 4f);
        var t = Rand.Uniform(2, R * C, 0f, 1f);
        var pw = withPosWeight ? PosWeight : null;
        Ref.AssertClose($"bce pw={withPosWeight} {reduction}", Bce(T(x, R, C), T(t, R, C), pw, reduction),
            Reference(x, t, [R, C], pw, reduction), rtol: 1e-5, atol: 1e-6);
    }

    [TestCaseSource(nameof(Cases))]
    public void BceGradientForLogitsAndSoftTargets(bool withPosWeight, Reduction reduction) =>
        GradCheck.Check($"bce pw={withPosWeight} {reduction}", x => Bce(x[0], x[1], withPosWeight ? PosWeight : null, reduction),
            GradInput.Range(3, -3f, 3f, R, C), GradInput.Range(4, 0f, 1f, R, C));

    [Test]
    public void BceGradientForLogitsOnlyWithHardTargets() =>
        GradCheck.Check("bce hard targets", x => Bce(x[0], x[1], PosWeight, Reduction.Mean),
            GradInput.Range(5, -3f, 3f, 2, 3, C), new GradInput(Rand.Ints(6, 2 * 3 * C, 0, 2).Select(v => (float)v).ToArray(), [2, 3, C]).Constant());

    [Test]
    public void BceOfExtremeLogitsIsFiniteAndExact()
    {
        // |x| = 50: exp(50) overflows nothing here, but log(sigmoid(-50)) computed naively is log(0) in float.
        float[] x = [50f, 50f, -50f, -50f, 50f, -50f];
        float[] t = [0f, 1f, 0f, 1f, 0.5f, 1f];
        float[] pw = [1f, 1f, 1f, 1f, 1f, 2f];
        var xs = T(x, 1, 6);
        xs.RequiresGrad = true;
        using var tape = Tape.Begin();
        var loss = Bce(xs, T(t, 1, 6), pw, Reduction.None);
        Assert.That(loss.ToArray(), Is.EqualTo(new[] { 50f, 0f, 0f, 50f, 25f, 100f }).Within(1e-4));
        tape.Backward(loss, T([1f, 1f, 1f, 1f, 1f, 1f], 1, 6));
        // d/dx = (1 - t) - l sigmoid(-x), l = 1 + (pw - 1) t: sigmoid(x) - t when pw = 1.
        Assert.That(xs.Grad!.ToArray(), Is.EqualTo(new[] { 1f, 0f, 0f, -1f, 0.5f, -2f }).Within(1e-6));
    }

    [Test]
    public void BceChecksShapes()
    {
        Assert.That(() => Bce(T(new float[R * C], R, C), T(new float[C], C), null, Reduction.Mean),
            Throws.TypeOf<ShapeMismatchException>().With.Message.Contains("targets [5]"));
        Assert.That(() => Bce(T(new float[R * C], R, C), T(new float[R * C], R, C), [1f, 2f], Reduction.Mean),
            Throws.TypeOf<ShapeMismatchException>().With.Message.Contains("pos_weight [2] must be [5]"));
    }

    [TestCase(Reduction.Mean)]
    [TestCase(Reduction.Sum)]
    [TestCase(Reduction.None)]
    public void MseForwardMatchesFloat64(Reduction reduction)
    {
        var a = Rand.Uniform(7, R * C);
        var b = Rand.Uniform(8, R * C);
        var squares = a.Zip(b, (p, q) => ((double)p - q) * ((double)p - q)).ToArray();
        var expected = reduction switch
        {
            Reduction.None => new RefTensor(squares, [R, C]),
            Reduction.Sum => new RefTensor([squares.Sum()], []),
            _ => new RefTensor([squares.Average()], []),
        };
        Ref.AssertClose($"mse {reduction}", Ops.MseLoss(T(a, R, C), T(b, R, C), reduction), expected, rtol: 1e-5, atol: 1e-6);
    }

    [TestCase(Reduction.Mean)]
    [TestCase(Reduction.Sum)]
    [TestCase(Reduction.None)]
    public void MseGradient(Reduction reduction) =>
        GradCheck.Check($"mse {reduction}", x => Ops.MseLoss(x[0], x[1], reduction),
            GradInput.Uniform(9, R, C), GradInput.Uniform(10, R, C));

    [Test]
    public void MseNeedsEqualShapes() =>
        Assert.That(() => Ops.MseLoss(T(new float[R * C], R, C), T(new float[C], C)),
            Throws.TypeOf<ShapeMismatchException>().With.Message.Contains("same shape"));
}
