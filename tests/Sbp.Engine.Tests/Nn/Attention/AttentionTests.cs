using Sbp.Autograd;
using Sbp.Engine.Tests.Support;
using Sbp.Tensors;

namespace Sbp.Engine.Tests.Nn.Attention;

/// <summary>Ops.ScaledDotProductAttention: forward against float64, gradients, saved bytes, masks and errors.</summary>
public class AttentionTests : DeviceTest
{
    // Odd sizes on purpose: N != M, Dv != D.
    const int B = 2, H = 3, N = 5, M = 7, D = 4, Dv = 6;

    static readonly int[] QShape = [B, H, N, D], KShape = [B, H, M, D], VShape = [B, H, M, Dv];

    /// <summary>A mask [B, 1, N, M] with -inf and -100 entries; every row keeps at least one key.</summary>
    static float[] MaskData(int batch, int n, int m)
    {
        var mask = new float[batch * n * m];
        for (int b = 0; b < batch; b++)
            for (int i = 0; i < n; i++)
                for (int j = 0; j < m; j++)
                {
                    int r = (i + 2 * j + b) % 4;
                    mask[(b * n + i) * m + j] = r == 0 ? float.NegativeInfinity : r == 1 ? -100f : 0f;
                }
        return mask;
    }

    /// <summary>
    /// The float64 reference, index by index. bias and mask are given with their shapes; a mask
    /// whose batch G differs from B (and is not 1) is a window mask: batch b uses mask[b mod G].
    /// </summary>
    static RefTensor Naive(float[] q, float[] k, float[] v, int b, int h, int n, int m, int d, int dv,
        float[]? bias, int[]? biasShape, float[]? mask, int[]? maskShape, double scale)
    {
        var y = RefTensor.Zeros(b, h, n, dv);
        var scores = new double[m];
        for (int bi = 0; bi < b; bi++)
            for (int hi = 0; hi < h; hi++)
                for (int i = 0; i < n; i++)
                {
                    for (int j = 0; j < m; j++)
                    {
                        double s = 0;
                        for (int c = 0; c < d; c++)
                            s += (double)q[((bi * h + hi) * n + i) * d + c] * k[((bi * h + hi) * m + j) * d + c];
                        s *= scale;
                        if (bias is not null) s += Lookup(bias, biasShape!, bi, hi, i, j, window: false);
                        if (mask is not null) s += Lookup(mask, maskShape!, bi, hi, i, j, window: true);
                        scores[j] = s;
                    }
                    double max = scores.Max();
                    var p = scores.Select(s => Math.Exp(s - max)).ToArray();
                    double sum = p.Sum();
                    for (int e = 0; e < dv; e++)
                    {
                        double o = 0;
                        for (int j = 0; j < m; j++) o += p[j] / sum * v[((bi * h + hi) * m + j) * dv + e];
                        y[bi, hi, i, e] = o;
                    }
                }
        return y;
    }

    /// <summary>Element [b, h, i, j] of a tensor broadcast to [B, H, N, M] (right-aligned; size-1 axes repeat).</summary>
    static double Lookup(float[] data, int[] shape, int b, int h, int i, int j, bool window)
    {
        int[] full = [b, h, i, j];
        var index = new int[shape.Length];
        for (int a = 0; a < shape.Length; a++)
        {
            int axis = a + 4 - shape.Length;
            index[a] = shape[a] == 1 ? 0 : axis == 0 && window ? full[0] % shape[a] : full[axis];
        }
        return data[Ref.Ravel(index, shape)];
    }

    Tensor Make(float[] data, int[] shape, bool grad = false)
    {
        var t = Tensor.FromArray(data, new Shape(shape), Device);
        t.RequiresGrad = grad;
        return t;
    }

    [TestCase(false, false, null)]
    [TestCase(true, false, null)]
    [TestCase(false, true, null)]
    [TestCase(true, true, null)]
    [TestCase(true, true, 0.9f)]
    public void ForwardMatchesFloat64Reference(bool withBias, bool withMask, float? scale)
    {
        var q = Rand.Uniform(1, Ref.Numel(QShape), -2f, 2f);
        var k = Rand.Uniform(2, Ref.Numel(KShape), -2f, 2f);
        var v = Rand.Uniform(3, Ref.Numel(VShape));
        int[] biasShape = [H, N, M];
        var bias = withBias ? Rand.Uniform(4, Ref.Numel(biasShape)) : null;
        int[] maskShape = [B, 1, N, M];
        var mask = withMask ? MaskData(B, N, M) : null;
        var y = Ops.ScaledDotProductAttention(Make(q, QShape), Make(k, KShape), Make(v, VShape),
            bias is null ? null : Make(bias, biasShape), mask is null ? null : Make(mask, maskShape), scale);
        var expected = Naive(q, k, v, B, H, N, M, D, Dv, bias, biasShape, mask, maskShape, scale ?? 1.0 / Math.Sqrt(D));
        Ref.AssertClose("sdpa", y, expected, rtol: 1e-4, atol: 1e-6);
    }

    [Test]
    public void WindowMaskRepeatsOverTheBatchAsSwin()
    {
        // 4 batch entries = 2 samples x nW = 2 windows; the mask [nW, 1, N, M] applies to window b mod 2.
        int b = 4, nw = 2;
        var q = Rand.Uniform(5, b * H * N * D);
        var k = Rand.Uniform(6, b * H * M * D);
        var v = Rand.Uniform(7, b * H * M * Dv);
        int[] biasShape = [1, H, N, M];
        var bias = Rand.Uniform(8, Ref.Numel(biasShape));
        int[] maskShape = [nw, 1, N, M];
        var mask = MaskData(nw, N, M);
        var y = Ops.ScaledDotProductAttention(Make(q, [b, H, N, D]), Make(k, [b, H, M, D]), Make(v, [b, H, M, Dv]),
            Make(bias, biasShape), Make(mask, maskShape));
        var expected = Naive(q, k, v, b, H, N, M, D, Dv, bias, biasShape, mask, maskShape, 1.0 / Math.Sqrt(D));
        Ref.AssertClose("sdpa window mask", y, expected, rtol: 1e-4, atol: 1e-6);
    }

    static Tensor Attend(Tensor[] x, int[]? maskShape, float? scale = null)
    {
        var mask = maskShape is null ? null
            : Tensor.FromArray(MaskData(maskShape[0], maskShape[2], maskShape[3]), new Shape(maskShape), x[0].Device);
        return Ops.ScaledDotProductAttention(x[0], x[1], x[2], x.Length > 3 ? x[3] : null, mask, scale);
    }

    [Test]
    public void GradientWithoutBiasOrMask() =>
        GradCheck.Check("sdpa", x => Attend(x, null),
            GradInput.Uniform(11, QShape), GradInput.Uniform(12, KShape), GradInput.Uniform(13, VShape));

    [TestCase(new[] { H, N, M })]
    [TestCase(new[] { 1, H, N, M })]
    [TestCase(new[] { B, H, N, M })]
    [TestCase(new[] { N, 1 })]
    public void GradientWithBias(int[] biasShape) =>
        GradCheck.Check($"sdpa bias {Ref.Format(biasShape)}", x => Attend(x, null),
            GradInput.Uniform(21, QShape), GradInput.Uniform(22, KShape), GradInput.Uniform(23, VShape),
            GradInput.Uniform(24, biasShape));

    [Test]
    public void GradientWithMask() =>
        GradCheck.Check("sdpa mask", x => Attend(x, [B, 1, N, M], scale: 0.7f),
            GradInput.Uniform(31, QShape), GradInput.Uniform(32, KShape), GradInput.Uniform(33, VShape));

    [Test]
    public void GradientWithBiasAndMask() =>
        GradCheck.Check("sdpa bias+mask", x => Attend(x, [B, 1, N, M]),
            GradInput.Uniform(41, QShape), GradInput.Uniform(42, KShape), GradInput.Uniform(43, VShape),
            GradInput.Uniform(44, [H, N, M]));

    [Test]
    public void GradientWithWindowMask() =>
        GradCheck.Check("sdpa window mask", x => Attend(x, [2, 1, N, M]),
            GradInput.Uniform(51, [4, 2, N, 3]), GradInput.Uniform(52, [4, 2, M, 3]), GradInput.Uniform(53, [4, 2, M, 2]),
            GradInput.Uniform(54, [2, N, M]));

    [TestCase(0)]
    [TestCase(1)]
    [TestCase(2)]
    [TestCase(3)]
    public void GradientWhenOnlyOneInputRequiresIt(int which)
    {
        // Each branch of the backward rule alone (the others are constants and must get no gradient).
        var inputs = new[] { GradInput.Uniform(61, QShape), GradInput.Uniform(62, KShape), GradInput.Uniform(63, VShape), GradInput.Uniform(64, [H, N, M]) };
        for (int i = 0; i < inputs.Length; i++) if (i != which) inputs[i] = inputs[i].Constant();
        GradCheck.Check($"sdpa only input {which}", x => Attend(x, [B, 1, N, M]), inputs);
    }

    [Test]
    public void SavesExactlyQKVAndTheProbabilitiesInOneNode()
    {
        var q = Make(Rand.Uniform(71, Ref.Numel(QShape)), QShape, grad: true);
        var k = Make(Rand.Uniform(72, Ref.Numel(KShape)), KShape, grad: true);
        var v = Make(Rand.Uniform(73, Ref.Numel(VShape)), VShape, grad: true);
        var bias = Make(Rand.Uniform(74, H * N * M), [H, N, M], grad: true);
        var mask = Make(MaskData(B, N, M), [B, 1, N, M]);
        long probabilities = (long)B * H * N * M * sizeof(float);
        using var tape = Tape.Begin();
        var y = Ops.ScaledDotProductAttention(q, k, v, bias, mask);
        Assert.That(tape.Nodes, Has.Count.EqualTo(1));
        Assert.That(tape.Nodes[^1].Op, Is.EqualTo("scaled_dot_product_attention"));
        Assert.That(tape.Nodes[^1].SavedBytes, Is.EqualTo(q.Bytes + k.Bytes + v.Bytes + probabilities));
        Assert.That(tape.SavedBytes, Is.EqualTo(q.Bytes + k.Bytes + v.Bytes + probabilities));
        tape.Backward(Ops.Sum(y));
        Assert.That(tape.SavedBytes, Is.Zero);
        Assert.That(q.Grad, Is.Not.Null);
        Assert.That(bias.Grad!.Shape, Is.EqualTo(bias.Shape));
    }

    [Test]
    public void SavesOnlyWhatTheNeededGradientsUse()
    {
        var q = Make(Rand.Uniform(81, Ref.Numel(QShape)), QShape);
        var k = Make(Rand.Uniform(82, Ref.Numel(KShape)), KShape);
        var v = Make(Rand.Uniform(83, Ref.Numel(VShape)), VShape, grad: true);
        long probabilities = (long)B * H * N * M * sizeof(float);
        using (var tape = Tape.Begin())
        {
            Ops.ScaledDotProductAttention(q, k, v);       // only dV = P^T dO: P alone
            Assert.That(tape.SavedBytes, Is.EqualTo(probabilities));
        }
        v.RequiresGrad = false;
        q.RequiresGrad = true;
        using (var tape = Tape.Begin())
        {
            Ops.ScaledDotProductAttention(q, k, v);       // dQ = scale dS K, dS from P and dO V^T
            Assert.That(tape.SavedBytes, Is.EqualTo(k.Bytes + v.Bytes + probabilities));
        }
    }

    [Test]
    public void AFullyMaskedRowIsAnErrorNamingTheRow()
    {
        var mask = new float[N * M];
        for (int j = 0; j < M; j++) mask[3 * M + j] = float.NegativeInfinity;
        var ex = Assert.Throws<ArgumentException>(() => Ops.ScaledDotProductAttention(
            Make(new float[Ref.Numel(QShape)], QShape), Make(new float[Ref.Numel(KShape)], KShape),
            Make(new float[Ref.Numel(VShape)], VShape), mask: Make(mask, [1, 1, N, M])));
        Assert.That(ex!.Message, Does.Contain("row [0, 0, 3, :]").And.Contain("-inf for every key"));

        mask[3 * M + 5] = float.NaN;
        ex = Assert.Throws<ArgumentException>(() => Ops.ScaledDotProductAttention(
            Make(new float[Ref.Numel(QShape)], QShape), Make(new float[Ref.Numel(KShape)], KShape),
            Make(new float[Ref.Numel(VShape)], VShape), mask: Make(mask, [N, M])));
        Assert.That(ex!.Message, Does.Contain("row [3, :]").And.Contain("NaN"));
    }

    [Test]
    public void ARowOfLargeNegativesIsUniformNotNaN()
    {
        // Swin's -100 convention: a row with every key at -100 attends uniformly.
        var mask = new float[N * M];
        for (int j = 0; j < M; j++) mask[2 * M + j] = -100f;
        var v = Rand.Uniform(91, Ref.Numel(VShape));
        var y = Ops.ScaledDotProductAttention(Make(new float[Ref.Numel(QShape)], QShape),
            Make(new float[Ref.Numel(KShape)], KShape), Make(v, VShape), mask: Make(mask, [N, M])).ToArray();
        // q = k = 0: every row is uniform, so out[b, h, i, :] is the mean of v over the keys.
        for (int e = 0; e < Dv; e++)
        {
            double mean = Enumerable.Range(0, M).Average(j => (double)v[j * Dv + e]);
            Assert.That(y[2 * Dv + e], Is.EqualTo(mean).Within(1e-5));
        }
    }

    [Test]
    public void ShapeErrorsNameTheOperands()
    {
        var q = Make(new float[Ref.Numel(QShape)], QShape);
        var k = Make(new float[Ref.Numel(KShape)], KShape);
        var v = Make(new float[Ref.Numel(VShape)], VShape);
        var badK = Make(new float[B * H * M * 3], [B, H, M, 3]);
        var badV = Make(new float[B * H * 6 * Dv], [B, H, 6, Dv]);
        Assert.That(() => Ops.ScaledDotProductAttention(q, badK, v),
            Throws.TypeOf<ShapeMismatchException>().With.Message.Contains("D=4").And.Message.Contains("[2, 3, 7, 3]"));
        Assert.That(() => Ops.ScaledDotProductAttention(q, k, badV),
            Throws.TypeOf<ShapeMismatchException>().With.Message.Contains("M=7"));
        Assert.That(() => Ops.ScaledDotProductAttention(Make(new float[N * D], [N, D]), k, v),
            Throws.TypeOf<ShapeMismatchException>().With.Message.Contains("rank 4"));
        Assert.That(() => Ops.ScaledDotProductAttention(q, k, v, bias: Make(new float[N * N], [N, N])),
            Throws.TypeOf<ShapeMismatchException>().With.Message.Contains("bias [5, 5]"));
        Assert.That(() => Ops.ScaledDotProductAttention(q, k, v, mask: Make(new float[3 * N * M], [3, 1, N, M])),
            Throws.TypeOf<ShapeMismatchException>().With.Message.Contains("mask [3, 1, 5, 7]"));
    }
}
