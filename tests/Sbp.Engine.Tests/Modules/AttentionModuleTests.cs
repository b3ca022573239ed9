using Sbp.Engine.Tests.Support;
using Sbp.Nn;
using Sbp.Rng;
using Sbp.Tensors;

namespace Sbp.Engine.Tests.Modules;

/// <summary>MultiHeadAttention and Mlp: names, counts, float64 forward, ops equivalence, dropout, gradients (inputs and parameters, with and without dropout).</summary>
public class AttentionModuleTests : DeviceTest
{
    const int B = 2, N = 5, C = 6, H = 2, Dh = C / H;

    static int[] Bits(Tensor t) => t.ToArray().Select(BitConverter.SingleToInt32Bits).ToArray();

    [Test]
    public void MultiHeadAttentionNamesAndCount()
    {
        using var m = new MultiHeadAttention(12, 3, new RandomSource(1), device: Device);
        Assert.That(m.ParameterCount(), Is.EqualTo(4 * 12 * 12 + 4 * 12));
        Assert.That(m.NamedParameters().Select(p => p.Name), Is.EqualTo(new[] { "qkv.weight", "qkv.bias", "proj.weight", "proj.bias" }));
        Assert.That(m.NamedModules().Select(p => p.Name), Is.EqualTo(new[] { "", "qkv", "attn_drop", "proj", "proj_drop" }));
        Assert.That(m.Qkv.Weight.Shape, Is.EqualTo(new Shape(36, 12)));
        using var noBias = new MultiHeadAttention(12, 3, new RandomSource(1), qkvBias: false, device: Device);
        Assert.That(noBias.ParameterCount(), Is.EqualTo(4 * 12 * 12 + 12));
        Assert.That(() => new MultiHeadAttention(10, 3, new RandomSource(1), device: Device), Throws.ArgumentException.With.Message.Contains("heads"));
    }

    /// <summary>The whole block in float64 from the module's weights; mask [G, 1, N, N] used as mask[b mod G].</summary>
    static double[] Reference(float[] x, int b, MultiHeadAttention m, float[]? bias, float[]? mask, int maskGroups)
    {
        var wq = m.Qkv.Weight.ToArray();
        var bq = m.Qkv.Bias?.ToArray();
        var wp = m.Proj.Weight.ToArray();
        var bp = m.Proj.Bias!.ToArray();
        var qkv = new double[b * N * 3 * C];
        for (int r = 0; r < b * N; r++)
            for (int j = 0; j < 3 * C; j++)
            {
                double s = bq?[j] ?? 0;
                for (int c = 0; c < C; c++) s += (double)x[r * C + c] * wq[j * C + c];
                qkv[r * 3 * C + j] = s;
            }
        double Q(int bb, int part, int h, int n, int d) => qkv[(bb * N + n) * 3 * C + part * C + h * Dh + d];
        var merged = new double[b * N * C];
        double scale = 1 / Math.Sqrt(Dh);
        for (int bb = 0; bb < b; bb++)
            for (int h = 0; h < H; h++)
                for (int i = 0; i < N; i++)
                {
                    var s = new double[N];
                    for (int j = 0; j < N; j++)
                    {
                        double dot = 0;
                        for (int d = 0; d < Dh; d++) dot += Q(bb, 0, h, i, d) * Q(bb, 1, h, j, d);
                        s[j] = scale * dot + (bias?[(h * N + i) * N + j] ?? 0) + (mask?[((bb % maskGroups) * N + i) * N + j] ?? 0);
                    }
                    double max = s.Max(), sum = s.Sum(v => Math.Exp(v - max));
                    for (int d = 0; d < Dh; d++)
                    {
                        double o = 0;
                        for (int j = 0; j < N; j++) o += Math.Exp(s[j] - max) / sum * Q(bb, 2, h, j, d);
                        merged[(bb * N + i) * C + h * Dh + d] = o;
                    }
                }
        var y = new double[b * N * C];
        for (int r = 0; r < b * N; r++)
            for (int j = 0; j < C; j++)
            {
                double s = bp[j];
                for (int c = 0; c < C; c++) s += merged[r * C + c] * wp[j * C + c];
                y[r * C + j] = s;
            }
        return y;
    }

    static float[] MaskData(int groups)
    {
        var mask = new float[groups * N * N];
        for (int g = 0; g < groups; g++)
            for (int i = 0; i < N; i++)
                for (int j = 0; j < N; j++)
                    mask[(g * N + i) * N + j] = (i + j + g) % 3 == 0 && i != j ? float.NegativeInfinity : (i + 2 * j + g) % 4 == 1 ? -100f : 0f;
        return mask;
    }

    static void AssertClose(float[] got, double[] expected, string what)
    {
        Assert.That(got, Has.Length.EqualTo(expected.Length));
        for (int i = 0; i < got.Length; i++)
            Assert.That(got[i], Is.EqualTo(expected[i]).Within(2e-5 + 1e-4 * Math.Abs(expected[i])), $"{what}: element {i}");
    }

    /// <summary>
    /// composed: attention dropout 1e-6 in training mode takes the composed matmul-softmax-dropout-matmul
    /// path; with this seed no element is dropped, so only the 1 / (1 - 1e-6) scale differs (below the tolerance).
    /// </summary>
    static MultiHeadAttention Build(Device device, ulong seed, bool composed) =>
        new(C, H, new RandomSource(seed), attnDrop: composed ? 1e-6f : 0f, device: device);

    [TestCase(false)]
    [TestCase(true)]
    public void ForwardMatchesFloat64(bool composed)
    {
        using var m = Build(Device, 2, composed);
        var x = Rand.Uniform(3, B * N * C);
        AssertClose(m.Forward(T(x, B, N, C)).ToArray(), Reference(x, B, m, null, null, 1), "plain");

        var bias = Rand.Uniform(4, H * N * N);
        var mask = MaskData(B);
        AssertClose(m.Forward(T(x, B, N, C), T(bias, H, N, N), T(mask, B, 1, N, N)).ToArray(), Reference(x, B, m, bias, mask, B), "bias and mask");

        // Window mask: 4 windows stored [batch * 2, ...] with 2 mask groups.
        var x4 = Rand.Uniform(5, 4 * N * C);
        var windowMask = MaskData(2);
        AssertClose(m.Forward(T(x4, 4, N, C), null, T(windowMask, 2, 1, N, N)).ToArray(), Reference(x4, 4, m, null, windowMask, 2), "window mask");
    }

    [Test]
    public void AttentionDropoutIsDeterministicAndOffInEval()
    {
        using var a = new MultiHeadAttention(C, H, new RandomSource(3), attnDrop: 0.5f, projDrop: 0.2f, device: Device);
        using var b = new MultiHeadAttention(C, H, new RandomSource(3), attnDrop: 0.5f, projDrop: 0.2f, device: Device);
        var xData = Rand.Uniform(4, B * N * C);
        var x = T(xData, B, N, C);
        var ya = a.Forward(x);
        Assert.That(Bits(b.Forward(x)), Is.EqualTo(Bits(ya)));
        a.Eval();
        b.Eval();
        using var plain = new MultiHeadAttention(C, H, new RandomSource(3), device: Device);
        var ea = a.Forward(x);
        Assert.That(Bits(ea), Is.EqualTo(Bits(plain.Forward(x))), "eval mode: no dropout, the fused op");
        Assert.That(Bits(ea), Is.Not.EqualTo(Bits(ya)));
        AssertClose(ea.ToArray(), Reference(xData, B, a, null, null, 1), "eval");
        var wrong = T(Rand.Uniform(4, B * N * (C + 1)), B, N, C + 1);
        Assert.That(() => a.Forward(wrong), Throws.InstanceOf<ShapeMismatchException>().With.Message.Contains("[2, 5, 7]"));
    }

    static MultiHeadAttention Frozen(Device device, bool composed = false)
    {
        var m = Build(device, 7, composed);
        m.Freeze();
        return m;
    }

    [TestCase(false)]
    [TestCase(true)]
    public void GradientsOfInputAndBiasThroughMultiHeadAttention(bool composed) =>
        // The module is rebuilt (same seed, frozen) on the check's device each call and disposed after its forward.
        GradCheck.Check("MultiHeadAttention x, bias", xs =>
        {
            using var m = Frozen(xs[0].Device, composed);
            var mask = Tensor.FromArray(MaskData(B), new Shape(B, 1, N, N), xs[0].Device);
            return m.Forward(xs[0], xs[1], mask);
        }, GradInput.Uniform(11, B, N, C), GradInput.Uniform(12, H, N, N));

    static readonly string[] AttentionParameters = ["qkv.weight", "qkv.bias", "proj.weight", "proj.bias"];

    /// <summary>names[i] is xs[i + 1] (xs[0] is the module's input), for <see cref="Module.WithParameters"/>.</summary>
    static Dictionary<string, Tensor> Params(Tensor[] xs, params string[] names) =>
        names.Select((n, i) => (n, xs[i + 1])).ToDictionary(p => p.n, p => p.Item2);

    /// <summary>A gradient-check input holding a parameter's current values.</summary>
    static GradInput Initial(Tensor p) => GradInput.Of(p.ToArray(), p.Shape.ToArray());

    /// <summary>
    /// The parameters are the check's inputs, starting from the module's own initial values; each evaluation
    /// rebuilds the module (same seed) on the check's device and substitutes them. x is a constant.
    /// </summary>
    [TestCase(false)]
    [TestCase(true)]
    public void GradientsOfParametersThroughMultiHeadAttention(bool composed)
    {
        using var initial = Build(Device, 8, composed);
        GradCheck.Check("MultiHeadAttention parameters", xs =>
        {
            using var m = Build(xs[0].Device, 8, composed);
            var mask = Tensor.FromArray(MaskData(2), new Shape(2, 1, N, N), xs[0].Device);
            using (m.WithParameters(Params(xs, AttentionParameters)))
                return m.Forward(xs[0], null, mask);
        }, GradInput.Uniform(13, 4, N, C).Constant(),
        Initial(initial.Qkv.Weight), Initial(initial.Qkv.Bias!), Initial(initial.Proj.Weight), Initial(initial.Proj.Bias!));
    }

    [Test]
    public void AttentionGradientsWithActiveAttentionAndProjectionDropout()
    {
        // Each evaluation builds the module from the same seed, so every run draws the same masks.
        GradCheck.Check("MultiHeadAttention dropout", xs =>
        {
            using var mha = new MultiHeadAttention(C, H, new RandomSource(16), attnDrop: 0.3f, projDrop: 0.2f, device: xs[0].Device);
            using (mha.WithParameters(Params(xs, AttentionParameters)))
                return mha.Forward(xs[0], xs[5], null);
        },
        GradInput.Uniform(17, B, N, C), GradInput.Uniform(18, 3 * C, C), GradInput.Uniform(19, 3 * C),
        GradInput.Uniform(20, C, C), GradInput.Uniform(21, C), GradInput.Uniform(22, H, N, N));
    }

    // ---- Mlp ------------------------------------------------------------------------------------

    [Test]
    public void MlpNamesCountAndForward()
    {
        using var m = new Mlp(5, 7, 3, new RandomSource(3), device: Device);
        Assert.That(m.NamedParameters().Select(p => p.Name), Is.EqualTo(new[] { "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias" }));
        Assert.That(m.NamedModules().Select(p => p.Name), Is.EqualTo(new[] { "", "fc1", "drop1", "fc2", "drop2" }));
        Assert.That(m.NamedBuffers(), Is.Empty);
        Assert.That(m.ParameterCount(), Is.EqualTo(5 * 7 + 7 + 7 * 3 + 3));
        var x = T(Rand.Uniform(4, 2 * 4 * 5), 2, 4, 5);
        var expected = Ops.Linear(Ops.Gelu(Ops.Linear(x, m.Fc1.Weight, m.Fc1.Bias)), m.Fc2.Weight, m.Fc2.Bias);
        Assert.That(m.Forward(x).ToArray(), Is.EqualTo(expected.ToArray()));

        using var relu = new Mlp(5, 7, new RandomSource(3), activation: x => Ops.Relu(x), device: Device);
        var expectedRelu = Ops.Linear(Ops.Relu(Ops.Linear(x, relu.Fc1.Weight, relu.Fc1.Bias)), relu.Fc2.Weight, relu.Fc2.Bias);
        Assert.That(relu.Forward(x).ToArray(), Is.EqualTo(expectedRelu.ToArray()));
        Assert.That(relu.Fc1.Weight.ToArray(), Is.EqualTo(m.Fc1.Weight.ToArray()), "same seed, same fc1");
    }

    [Test]
    public void GradientsThroughMlp()
    {
        GradCheck.Check("Mlp x", xs =>
        {
            using var m = new Mlp(5, 7, 4, new RandomSource(9), device: xs[0].Device);
            m.Freeze();
            return m.Forward(xs[0]);
        }, GradInput.Uniform(14, 3, 5));
        using var initial = new Mlp(5, 7, 4, new RandomSource(9), device: Device);
        GradCheck.Check("Mlp parameters", xs =>
        {
            using var m = new Mlp(5, 7, 4, new RandomSource(9), device: xs[0].Device);
            using (m.WithParameters(Params(xs, MlpParameters)))
                return m.Forward(xs[0]);
        }, GradInput.Uniform(15, 3, 5).Constant(),
        Initial(initial.Fc1.Weight), Initial(initial.Fc1.Bias!), Initial(initial.Fc2.Weight), Initial(initial.Fc2.Bias!));
    }

    static readonly string[] MlpParameters = ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"];

    [Test]
    public void MlpGradientsWithDropout()
    {
        GradCheck.Check("Mlp dropout", xs =>
        {
            using var mlp = new Mlp(5, 7, 3, new RandomSource(29), drop: 0.4f, device: xs[0].Device);
            using (mlp.WithParameters(Params(xs, MlpParameters)))
                return mlp.Forward(xs[0]);
        },
        GradInput.Uniform(30, 2, 3, 5), GradInput.Uniform(31, 7, 5), GradInput.Uniform(32, 7),
        GradInput.Uniform(33, 3, 7), GradInput.Uniform(34, 3));
    }

    [Test]
    public void MultiHeadAttentionLeavesOnlyItsOutput()
    {
        using var m = new MultiHeadAttention(C, H, new RandomSource(2), device: Device);
        var x = T(Rand.Uniform(3, B * N * C), B, N, C);
        long before = Device.Pool.InUseBytes;
        using (var y = m.Forward(x))
            Assert.That(Device.Pool.InUseBytes - before, Is.EqualTo(y.Bytes));
        Assert.That(Device.Pool.InUseBytes, Is.EqualTo(before));
    }
}
