using Sbp.Autograd;
using Sbp.Engine.Tests.Support;
using Sbp.Tensors;

namespace Sbp.Engine.Tests.Nn.Losses;

/// <summary>Ops.CrossEntropy with PyTorch's semantics for class weights, label smoothing and reductions.</summary>
public class CrossEntropyTests : DeviceTest
{
    const int N = 5, C = 7;
    static readonly int[] Targets = [3, 0, 6, 3, 5];
    static readonly float[] Weights = [0.5f, 1.5f, 2f, 0.25f, 1f, 3f, 0.75f];

    /// <summary>
    /// PyTorch's definition in float64: loss_i = (1 - eps) w[y_i] (-logp[i, y_i]) + eps / C sum_c w[c] (-logp[i, c]);
    /// mean = sum_i loss_i / sum_i w[y_i].
    /// </summary>
    static RefTensor Reference(float[] logits, int n, int c, int[] targets, float[]? weights, double eps, Reduction reduction)
    {
        var losses = new double[n];
        double denominator = 0;
        for (int i = 0; i < n; i++)
        {
            var z = Enumerable.Range(0, c).Select(j => (double)logits[i * c + j]).ToArray();
            double max = z.Max();
            double lse = max + Math.Log(z.Sum(v => Math.Exp(v - max)));
            double W(int j) => weights is null ? 1.0 : weights[j];
            double smooth = 0;
            for (int j = 0; j < c; j++) smooth += W(j) * (lse - z[j]);
            losses[i] = (1 - eps) * W(targets[i]) * (lse - z[targets[i]]) + eps / c * smooth;
            denominator += W(targets[i]);
        }
        return reduction switch
        {
            Reduction.None => new RefTensor(losses, [n]),
            Reduction.Sum => new RefTensor([losses.Sum()], []),
            _ => new RefTensor([losses.Sum() / denominator], []),
        };
    }

    static IEnumerable<TestCaseData> Cases()
    {
        foreach (var smoothing in new[] { 0f, 0.15f })
            foreach (var weighted in new[] { false, true })
                foreach (var reduction in new[] { Reduction.Mean, Reduction.Sum, Reduction.None })
                    yield return new TestCaseData(smoothing, weighted, reduction);
    }

    static Tensor Loss(Tensor logits, int[] targets, float smoothing, float[]? weights, Reduction reduction)
    {
        var device = logits.Device;
        var t = Tensor.FromArray(targets, new Shape(targets.Length), device);
        var w = weights is null ? null : Tensor.FromArray(weights, new Shape(weights.Length), device);
        return Ops.CrossEntropy(logits, t, smoothing, w, reduction);
    }

    [TestCaseSource(nameof(Cases))]
    public void ForwardMatchesFloat64(float smoothing, bool weighted, Reduction reduction)
    {
        var z = Rand.Uniform(1, N * C, -3f, 3f);
        var weights = weighted ? Weights : null;
        var y = Loss(T(z, N, C), Targets, smoothing, weights, reduction);
        Ref.AssertClose($"cross_entropy eps={smoothing} weighted={weighted} {reduction}", y,
            Reference(z, N, C, Targets, weights, smoothing, reduction), rtol: 1e-5, atol: 1e-6);
    }

    [TestCaseSource(nameof(Cases))]
    public void Gradient(float smoothing, bool weighted, Reduction reduction) =>
        GradCheck.Check($"cross_entropy eps={smoothing} weighted={weighted} {reduction}",
            x => Loss(x[0], Targets, smoothing, weighted ? Weights : null, reduction),
            GradInput.Range(2, -3f, 3f, N, C));

    [Test]
    public void HandComputedPyTorchValues()
    {
        // logits [[1, 2, 3], [0, 0, 0]], targets [0, 2], weight [1, 2, 3], label_smoothing 0.3:
        // lse row 0 = log(e + e^2 + e^3); -logp = [2.4076, 1.4076, 0.4076]:
        //   0.7 * 1 * 2.4076 + 0.1 * (1 * 2.4076 + 2 * 1.4076 + 3 * 0.4076) = 2.3298877537776940
        // row 1: -logp = log 3 each: 0.7 * 3 * log 3 + 0.1 * 6 * log 3 = 2.9662531794038958
        // mean = (2.32988775 + 2.96625318) / (w[0] + w[2] = 4) = 1.3240352332953975
        var z = T([1f, 2f, 3f, 0f, 0f, 0f], 2, 3);
        float[] w = [1f, 2f, 3f];
        Assert.That(Loss(z, [0, 2], 0.3f, w, Reduction.None).ToArray(),
            Is.EqualTo(new[] { 2.3298877537776940f, 2.9662531794038958f }).Within(1e-5));
        Assert.That(Loss(z, [0, 2], 0.3f, w, Reduction.Mean).Item(), Is.EqualTo(1.3240352332953975).Within(1e-5));
        Assert.That(Loss(z, [0, 2], 0.3f, w, Reduction.Sum).Item(), Is.EqualTo(5.29614093318159).Within(1e-5));
        // Plain cross-entropy of uniform logits is log C.
        Assert.That(Loss(z, [0, 2], 0f, null, Reduction.None).ToArray()[1], Is.EqualTo(Math.Log(3)).Within(1e-6));
    }

    [Test]
    public void GradientOfTheMeanIsSoftmaxMinusTargetOverN()
    {
        var z = Rand.Uniform(3, N * C);
        var logits = T(z, N, C);
        logits.RequiresGrad = true;
        using var tape = Tape.Begin();
        var loss = Loss(logits, Targets, 0f, null, Reduction.Mean);
        Assert.That(tape.Nodes, Has.Count.EqualTo(1));
        tape.Backward(loss);
        var p = Ref.Softmax(RefTensor.Of(z, N, C), 1);
        for (int i = 0; i < N; i++) p[i, Targets[i]] -= 1;
        Ref.AssertClose("cross_entropy grad", logits.Grad!, Ref.Map(p, g => g / N), rtol: 1e-5, atol: 1e-6);
    }

    [Test]
    public void ExtremeLogitsStayFinite()
    {
        var y = Loss(T([1000f, -1000f, 0f, -1000f, 1000f, 0f], 2, 3), [1, 1], 0.1f, null, Reduction.None).ToArray();
        Assert.That(y[0], Is.EqualTo(2000 * 0.9 + 0.1 / 3 * (0 + 2000 + 1000)).Within(0.1));
        Assert.That(y[1], Is.EqualTo(0.1 / 3 * (2000 + 0 + 1000)).Within(0.1));
    }

    [Test]
    public void TargetsOutOfRangeNameTheIndexAndValue()
    {
        var z = T(new float[N * C], N, C);
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => Loss(z, [0, 1, 7, 2, 3], 0f, null, Reduction.Mean));
        Assert.That(ex!.Message, Does.Contain("target 2 is 7").And.Contain("0..6"));
        ex = Assert.Throws<ArgumentOutOfRangeException>(() => Loss(z, [0, 1, 2, -1, 3], 0f, null, Reduction.Mean));
        Assert.That(ex!.Message, Does.Contain("target 3 is -1"));
    }

    [Test]
    public void BadShapesAndOptionsAreClearErrors()
    {
        var z = T(new float[N * C], N, C);
        Assert.That(() => Loss(z, [0, 1, 2], 0f, null, Reduction.Mean),
            Throws.TypeOf<ShapeMismatchException>().With.Message.Contains("[5]"));
        Assert.That(() => Loss(z, Targets, 0f, [1f, 2f], Reduction.Mean),
            Throws.TypeOf<ShapeMismatchException>().With.Message.Contains("class weights [2] must be [7]"));
        Assert.That(() => Loss(z, Targets, 1.5f, null, Reduction.Mean), Throws.TypeOf<ArgumentOutOfRangeException>());
        Assert.That(() => Loss(T(new float[N * C], N, 1, C), Targets, 0f, null, Reduction.Mean),
            Throws.TypeOf<ShapeMismatchException>().With.Message.Contains("[N, C]"));
    }
}
