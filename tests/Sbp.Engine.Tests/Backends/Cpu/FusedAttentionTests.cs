using Sbp.Backends;
using Sbp.Backends.Cpu;
using Sbp.Engine.Tests.Support;
using Sbp.Tensors;

namespace Sbp.Engine.Tests.Backends.Cpu;

/// <summary>
/// The CPU's attention forward and backward (one entry at a time, score-sized blocks kept in cache)
/// against the whole-tensor steps they replace (<see cref="AttentionSteps"/>): the same GEMMs,
/// additions and softmax rows, so the results must be bitwise equal, for every bias and mask form the
/// fused forward takes and every set of gradients; and both paths against a float64 reference.
/// </summary>
public sealed class FusedAttentionTests : DeviceTest
{
    // B, H, N, M, D, Dv, bias shape, mask shape, window mask: the forms the fused forward takes
    static IEnumerable<TestCaseData> Cases()
    {
        yield return new TestCaseData(2, 3, 9, 13, 5, 7, null, null, false).SetName("no bias or mask");
        yield return new TestCaseData(4, 2, 16, 16, 8, 8, new[] { 2, 16, 16 }, null, false).SetName("bias [H, N, M] (Swin)");
        yield return new TestCaseData(4, 2, 16, 16, 8, 8, new[] { 4, 1, 16, 16 }, new[] { 4, 2, 16, 16 }, false).SetName("bias [B, 1, N, M], mask [B, H, N, M]");
        yield return new TestCaseData(6, 2, 16, 16, 8, 8, new[] { 2, 16, 16 }, new[] { 3, 1, 16, 16 }, true).SetName("window mask [G, 1, N, M]");
        yield return new TestCaseData(6, 2, 16, 16, 8, 8, null, new[] { 2, 2, 16, 16 }, true).SetName("window mask [G, H, N, M]");
        yield return new TestCaseData(1, 2, 136, 140, 16, 24, new[] { 2, 136, 140 }, null, false).SetName("N, M over 128 (packed GEMMs)");
    }

    // B, H, N (query rows, compact under SBP), M, D, Dv; which gradients: dq, dk, dv, dScores
    [TestCase(2, 3, 9, 13, 5, 7, true, true, true, true)]
    [TestCase(2, 3, 9, 13, 5, 7, true, true, true, false)]
    [TestCase(4, 2, 8, 16, 8, 8, true, false, false, false)]
    [TestCase(4, 2, 8, 16, 8, 8, false, true, false, true)]
    [TestCase(4, 2, 8, 16, 8, 8, false, false, true, false)]
    [TestCase(1, 2, 136, 140, 16, 24, true, true, true, true)]
    public void FusedBackward_EqualsTheWholeTensorSteps_Bitwise(int b, int h, int n, int m, int d, int dv,
        bool wantDq, bool wantDk, bool wantDv, bool wantScores)
    {
        var spec = new AttentionSpec(b, h, n, m, d, dv, 0.37f, false);
        using var q = T(Rand.Normal(11, b * h * n * d), b, h, n, d);
        using var k = T(Rand.Normal(12, b * h * m * d), b, h, m, d);
        using var v = T(Rand.Normal(13, b * h * m * dv), b, h, m, dv);
        using var g = T(Rand.Normal(14, b * h * n * dv), b, h, n, dv);
        using var probs = Tensor.Empty(spec.Scores, Device);
        using (var output = Tensor.Empty(new Shape(b, h, n, dv), Device))
            AttentionSteps.Forward(CpuBackend.Instance, spec, q, k, v, null, null, probs, output);
        Tensor?[] Outputs() =>
        [
            wantDq ? Tensor.Empty(q.Shape, Device) : null, wantDk ? Tensor.Empty(k.Shape, Device) : null,
            wantDv ? Tensor.Empty(v.Shape, Device) : null, wantScores ? Tensor.Empty(spec.Scores, Device) : null,
        ];
        var got = Outputs();
        var want = Outputs();
        CpuBackend.Instance.AttentionBackward(spec, probs, g, q, k, v, got[0], got[1], got[2], got[3]);
        AttentionSteps.Backward(CpuBackend.Instance, spec, probs, g, q, k, v, want[0], want[1], want[2], want[3]);
        string[] names = ["dq", "dk", "dv", "dS"];
        for (int i = 0; i < 4; i++)
        {
            if (got[i] is null) continue;
            Assert.That(got[i]!.ToArray(), Is.EqualTo(want[i]!.ToArray()), names[i]);
            got[i]!.Dispose();
            want[i]!.Dispose();
        }
    }

    [TestCaseSource(nameof(Cases))]
    public void FusedForward_EqualsTheWholeTensorSteps_Bitwise(int b, int h, int n, int m, int d, int dv, int[]? biasShape, int[]? maskShape, bool window)
    {
        using var q = T(Rand.Normal(1, b * h * n * d), b, h, n, d);
        using var k = T(Rand.Normal(2, b * h * m * d), b, h, m, d);
        using var v = T(Rand.Normal(3, b * h * m * dv), b, h, m, dv);
        using var bias = biasShape is null ? null : T(Rand.Normal(4, (int)new Shape(biasShape).Numel), biasShape);
        // Mask entries 0 or -100 (Swin's value), so no row is masked out entirely.
        using var mask = maskShape is null ? null : T([.. Rand.Uniform(5, (int)new Shape(maskShape).Numel).Select(u => u < -0.3f ? -100f : 0f)], maskShape);
        var spec = new AttentionSpec(b, h, n, m, d, dv, 1f / MathF.Sqrt(d), window);
        using var probs = Tensor.Empty(spec.Scores, Device);
        using var output = Tensor.Empty(new Shape(b, h, n, dv), Device);
        using var wantProbs = Tensor.Empty(spec.Scores, Device);
        using var wantOutput = Tensor.Empty(new Shape(b, h, n, dv), Device);
        CpuBackend.Instance.AttentionForward(spec, q, k, v, bias, mask, probs, output);
        AttentionSteps.Forward(CpuBackend.Instance, spec, q, k, v, bias, mask, wantProbs, wantOutput);
        Assert.That(probs.ToArray(), Is.EqualTo(wantProbs.ToArray()), "probabilities");
        Assert.That(output.ToArray(), Is.EqualTo(wantOutput.ToArray()), "output");
    }

    // 16-bit type; q, k, v in it or Float32; the bias in it or Float32; P saved in it or Float32 (odd N, M: 9 x 9)
    static IEnumerable<TestCaseData> Cases16()
    {
        foreach (var type in new[] { DType.BFloat16, DType.Float16 })
        {
            yield return new TestCaseData(type, true, true, true).SetName($"{type}: q, k, v, bias and P");
            yield return new TestCaseData(type, true, false, true).SetName($"{type}: q, k, v and P, Float32 bias");
            yield return new TestCaseData(type, true, true, false).SetName($"{type}: q, k, v and bias, Float32 P");
            yield return new TestCaseData(type, false, false, true).SetName($"{type}: P only (saved activations)");
        }
    }

    /// <summary>
    /// 16-bit operands (autocast) and 16-bit saved probabilities: the fused CPU paths widen each entry in cache and round
    /// P and the output there; <see cref="AttentionSteps"/> widens whole tensors first and rounds after. Both must give the
    /// bits of the Float32 steps on explicit widenings with P and the output rounded, forward and backward (window mask, bias).
    /// </summary>
    [TestCaseSource(nameof(Cases16))]
    public void SixteenBit_FusedAndSteps_EqualTheFloat32StepsOnWidenings_Bitwise(DType type, bool lowQkv, bool lowBias, bool lowProbs)
    {
        int b = 6, h = 2, n = 9, m = 9, d = 8, dv = 6;
        var spec = new AttentionSpec(b, h, n, m, d, dv, 1f / MathF.Sqrt(d), true);
        Tensor Input(int seed, bool low, params int[] shape)
        {
            var t = T(Rand.Normal(seed, (int)new Shape(shape).Numel), shape);
            if (!low) return t;
            using (t) return t.To(type);
        }
        using var q = Input(21, lowQkv, b, h, n, d);
        using var k = Input(22, lowQkv, b, h, m, d);
        using var v = Input(23, lowQkv, b, h, m, dv);
        using var bias = Input(24, lowBias, h, n, m);
        using var mask = T([.. Rand.Uniform(25, 3 * n * m).Select(u => u < -0.3f ? -100f : 0f)], 3, 1, n, m);
        using var g = T(Rand.Normal(26, b * h * n * dv), b, h, n, dv);
        var probsType = lowProbs ? type : DType.Float32;
        var outType = lowQkv ? type : DType.Float32;

        // the reference: Float32 steps on widenings, P and the output rounded
        using var wq = As(q, DType.Float32);
        using var wk = As(k, DType.Float32);
        using var wv = As(v, DType.Float32);
        using var wb = As(bias, DType.Float32);
        using var p32 = Tensor.Empty(spec.Scores, Device);
        using var o32 = Tensor.Empty(new Shape(b, h, n, dv), Device);
        AttentionSteps.Forward(CpuBackend.Instance, spec, wq, wk, wv, wb, mask, p32, o32);
        using var wantP = As(p32, probsType);
        using var wantO = As(o32, outType);
        using var wantPWide = As(wantP, DType.Float32);
        var want = new[] { wantP.ToArray(), wantO.ToArray() };
        var wantGrads = Grads((s, p, gr, a, bb, c, o) => AttentionSteps.Backward(CpuBackend.Instance, s, p, gr, a, bb, c, o[0], o[1], o[2], o[3]),
            spec, wantPWide, g, wq, wk, wv);

        foreach (var fused in new[] { true, false })
        {
            using var probs = Tensor.Empty(spec.Scores, Device, probsType);
            using var output = Tensor.Empty(new Shape(b, h, n, dv), Device, outType);
            if (fused) CpuBackend.Instance.AttentionForward(spec, q, k, v, bias, mask, probs, output);
            else AttentionSteps.Forward(CpuBackend.Instance, spec, q, k, v, bias, mask, probs, output);
            string path = fused ? "fused" : "steps";
            Assert.That(probs.ToArray(), Is.EqualTo(want[0]), $"{path}: P");
            Assert.That(output.ToArray(), Is.EqualTo(want[1]), $"{path}: output");
            var grads = Grads(fused
                ? (s, p, gr, a, bb, c, o) => CpuBackend.Instance.AttentionBackward(s, p, gr, a, bb, c, o[0], o[1], o[2], o[3])
                : (s, p, gr, a, bb, c, o) => AttentionSteps.Backward(CpuBackend.Instance, s, p, gr, a, bb, c, o[0], o[1], o[2], o[3]),
                spec, probs, g, q, k, v);
            for (int i = 0; i < grads.Length; i++) Assert.That(grads[i], Is.EqualTo(wantGrads[i]), $"{path}: gradient {i} (dq, dk, dv, dS)");
        }
    }

    /// <summary>A new tensor of t's values in <paramref name="type"/> (a cast, or a copy for the same type; t is kept).</summary>
    Tensor As(Tensor t, DType type)
    {
        if (t.DType != type) return t.To(type);
        var copy = T(t.ToArray(), t.Shape.ToArray());   // 16-bit values widen exactly and round back to themselves
        if (type == DType.Float32) return copy;
        using (copy) return copy.To(type);
    }

    delegate void BackwardCall(AttentionSpec s, Tensor probs, Tensor g, Tensor q, Tensor k, Tensor v, Tensor[] outputs);

    /// <summary>dq, dk, dv and dS of one backward call, as host arrays.</summary>
    float[][] Grads(BackwardCall call, AttentionSpec s, Tensor probs, Tensor g, Tensor q, Tensor k, Tensor v)
    {
        Tensor[] outputs = [Tensor.Empty(q.Shape, Device), Tensor.Empty(k.Shape, Device), Tensor.Empty(v.Shape, Device), Tensor.Empty(s.Scores, Device)];
        try
        {
            call(s, probs, g, q, k, v, outputs);
            return [.. outputs.Select(o => o.ToArray())];
        }
        finally
        {
            foreach (var o in outputs) o.Dispose();
        }
    }

    /// <summary>Every form above, and one the fused forward hands to the steps (broadcast bias and mask).</summary>
    static IEnumerable<TestCaseData> EveryForm() =>
        Cases().Append(new TestCaseData(2, 2, 10, 12, 4, 4, new[] { 12 }, new[] { 10, 1 }, false).SetName("broadcast bias and mask (the steps' path)"));

    /// <summary>
    /// The CPU's forward (fused or steps) and fused backward against attention computed in float64 on
    /// the host: P = softmax(q k^T scale + bias + mask), O = P v, and from g = dL/dO: dV = P^T g,
    /// dS = P * (g v^T - rowsum(P * g v^T)), dq = scale dS k, dk = scale dS^T q. Float32 rounds each
    /// operation to 2^-24 relative: a sum of up to max(D, M, N) = 140 terms errs by at most 140 * 2^-24
    /// = 8e-6 of its terms' magnitudes, and a score shifted by the -100 mask is rounded to 2^-24 * 100
    /// = 6e-6 absolute, a relative error of P. So every result is held to 2e-5 of its scale (its largest
    /// magnitude); seen: at most 1.6e-6 (the -100 rows), 4e-7 elsewhere. A wrong term fails it by far:
    /// scaling the bias by 0.999 already moves P by 8e-4.
    /// </summary>
    [TestCaseSource(nameof(EveryForm))]
    public void ForwardAndBackward_MatchFloat64Attention(int b, int h, int n, int m, int d, int dv, int[]? biasShape, int[]? maskShape, bool window)
    {
        float[] hq = Rand.Normal(1, b * h * n * d), hk = Rand.Normal(2, b * h * m * d), hv = Rand.Normal(3, b * h * m * dv), hg = Rand.Normal(6, b * h * n * dv);
        float[]? hbias = biasShape is null ? null : Rand.Normal(4, (int)new Shape(biasShape).Numel);
        float[]? hmask = maskShape is null ? null : [.. Rand.Uniform(5, (int)new Shape(maskShape).Numel).Select(u => u < -0.3f ? -100f : 0f)];
        var spec = new AttentionSpec(b, h, n, m, d, dv, 1f / MathF.Sqrt(d), window);
        using var q = T(hq, b, h, n, d);
        using var k = T(hk, b, h, m, d);
        using var v = T(hv, b, h, m, dv);
        using var g = T(hg, b, h, n, dv);
        using var bias = hbias is null ? null : T(hbias, biasShape!);
        using var mask = hmask is null ? null : T(hmask, maskShape!);
        using var probs = Tensor.Empty(spec.Scores, Device);
        using var output = Tensor.Empty(new Shape(b, h, n, dv), Device);
        using var dq = Tensor.Empty(q.Shape, Device);
        using var dk = Tensor.Empty(k.Shape, Device);
        using var dvT = Tensor.Empty(v.Shape, Device);
        using var dScores = Tensor.Empty(spec.Scores, Device);
        CpuBackend.Instance.AttentionForward(spec, q, k, v, bias, mask, probs, output);
        CpuBackend.Instance.AttentionBackward(spec, probs, g, q, k, v, dq, dk, dvT, dScores);

        // Bias and mask broadcast to [B, H, N, M]; a window mask [G, h, N, M] as [B / G, G, H, N, M] (entry b uses plane b mod G).
        int[] scores = [b, h, n, m];
        double[]? Full(float[]? x, int[]? shape, bool windowForm) => x is null ? null
            : Ref.BroadcastTo(RefTensor.Of(x, shape!), windowForm ? [b / shape![0], .. shape.Take(1), h, n, m] : scores).Data;
        var want = Float64Attention(spec, hq, hk, hv, hg, Full(hbias, biasShape, false), Full(hmask, maskShape, window));
        (string Name, Tensor Got, double[] Want)[] results =
            [("P", probs, want.P), ("O", output, want.O), ("dq", dq, want.Dq), ("dk", dk, want.Dk), ("dv", dvT, want.Dv), ("dS", dScores, want.DS)];
        foreach (var (name, got, expected) in results)
        {
            var actual = got.ToArray();
            double scale = expected.Max(Math.Abs), worst = actual.Select((x, i) => Math.Abs(x - expected[i])).Max();
            Assert.That(worst, Is.LessThanOrEqualTo(2e-5 * scale), $"{name}: worst |float32 - float64| {worst:G3}, scale {scale:G3}");
        }
    }

    /// <summary>Attention and its gradients in float64, one entry and one row at a time.</summary>
    static (double[] P, double[] O, double[] Dq, double[] Dk, double[] Dv, double[] DS) Float64Attention(
        AttentionSpec s, float[] q, float[] k, float[] v, float[] g, double[]? bias, double[]? mask)
    {
        int n = s.N, m = s.M, d = s.D, dv = s.Dv;
        var (p, o, ds) = (new double[s.Entries * n * m], new double[s.Entries * n * dv], new double[s.Entries * n * m]);
        var (dq, dk, dV) = (new double[q.Length], new double[k.Length], new double[v.Length]);
        for (int e = 0; e < s.Entries; e++)
            for (int i = 0; i < n; i++)
            {
                int row = (e * n + i) * m;
                double max = double.NegativeInfinity, total = 0, dot = 0;
                for (int j = 0; j < m; j++)
                {
                    double z = 0;
                    for (int c = 0; c < d; c++) z += (double)q[(e * n + i) * d + c] * k[(e * m + j) * d + c];
                    p[row + j] = z * s.Scale + (bias?[row + j] ?? 0) + (mask?[row + j] ?? 0);
                    max = Math.Max(max, p[row + j]);
                }
                for (int j = 0; j < m; j++) total += p[row + j] = Math.Exp(p[row + j] - max);
                for (int j = 0; j < m; j++)
                {
                    p[row + j] /= total;
                    double gv = 0;   // (g v^T)_ij
                    for (int c = 0; c < dv; c++)
                    {
                        o[(e * n + i) * dv + c] += p[row + j] * v[(e * m + j) * dv + c];
                        dV[(e * m + j) * dv + c] += p[row + j] * g[(e * n + i) * dv + c];
                        gv += (double)g[(e * n + i) * dv + c] * v[(e * m + j) * dv + c];
                    }
                    ds[row + j] = gv;
                    dot += p[row + j] * gv;
                }
                for (int j = 0; j < m; j++)
                {
                    ds[row + j] = p[row + j] * (ds[row + j] - dot);
                    for (int c = 0; c < d; c++)
                    {
                        dq[(e * n + i) * d + c] += s.Scale * ds[row + j] * k[(e * m + j) * d + c];
                        dk[(e * m + j) * d + c] += s.Scale * ds[row + j] * q[(e * n + i) * d + c];
                    }
                }
            }
        return (p, o, dq, dk, dV, ds);
    }
}
