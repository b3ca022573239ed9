using Sbp.Backends;
using Sbp.Backends.Cpu;
using Sbp.Engine.Tests.Support;
using Sbp.Tensors;

namespace Sbp.Engine.Tests.Backends.Cpu;

/// <summary>
/// The CPU's attention forward and backward (one entry at a time, score-sized blocks kept in cache)
/// against the whole-tensor steps they replace (<see cref="AttentionSteps"/>): the same GEMMs,
/// additions and softmax rows, so the results must be bitwise equal, for every bias and mask form
/// (including the forms the fused forward hands back to the steps) and every set of gradients.
/// </summary>
public sealed class FusedAttentionTests : DeviceTest
{
    // name, B, H, N, M, D, Dv, bias shape, mask shape, window mask
    static IEnumerable<TestCaseData> Cases()
    {
        yield return new TestCaseData(2, 3, 9, 13, 5, 7, null, null, false).SetName("no bias or mask");
        yield return new TestCaseData(4, 2, 16, 16, 8, 8, new[] { 2, 16, 16 }, null, false).SetName("bias [H, N, M] (Swin)");
        yield return new TestCaseData(4, 2, 16, 16, 8, 8, new[] { 4, 1, 16, 16 }, new[] { 4, 2, 16, 16 }, false).SetName("bias [B, 1, N, M], mask [B, H, N, M]");
        yield return new TestCaseData(6, 2, 16, 16, 8, 8, new[] { 2, 16, 16 }, new[] { 3, 1, 16, 16 }, true).SetName("window mask [G, 1, N, M]");
        yield return new TestCaseData(6, 2, 16, 16, 8, 8, null, new[] { 2, 2, 16, 16 }, true).SetName("window mask [G, H, N, M]");
        yield return new TestCaseData(2, 2, 10, 12, 4, 4, new[] { 12 }, new[] { 10, 1 }, false).SetName("broadcast bias and mask (the steps' path)");
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
}
