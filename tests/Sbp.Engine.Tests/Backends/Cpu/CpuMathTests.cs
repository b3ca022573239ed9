using Sbp.Backends;
using Sbp.Backends.Cpu;
using Sbp.Engine.Tests.Support;
using Sbp.Tensors;

namespace Sbp.Engine.Tests.Backends.Cpu;

/// <summary>The vectorized exp and GELU span forms against float64, element by element; ReLU's vectorized backward against its scalar rule.</summary>
public sealed unsafe class CpuMathTests
{
    static float[] Inputs() =>
        [.. Rand.Uniform(1, 997, -12f, 12f), 0f, -0f, 1e-3f, -1e-3f, 1e-30f, 5.5f, -5.5f, 40f, -40f, 400f, -400f,
         float.MaxValue, float.MinValue, float.PositiveInfinity];

    static void Near(float got, float want, float x, string what)
    {
        if (got != want && !(Math.Abs(got - want) <= 2e-6 * Math.Max(1.0, Math.Abs(want))))
            Assert.Fail($"{what}({x}) = {got}, scalar form {want}.");
    }

    [Test]
    public void Exp_IsWithinOneUlpOfFloat64_AndHandlesTheEdges()
    {
        // A sweep of float's whole normal range of results, 100003 values (a tail of 3 per span).
        int n = 100003;
        var x = new float[n];
        for (int i = 0; i < n; i++) x[i] = -87.3f + 176f * i / (n - 1);
        var y = new float[n];
        fixed (float* px = x, py = y) CpuMath.Exp(px, py, n);
        for (int i = 0; i < n; i++)
        {
            double want = Math.Exp(x[i]);
            if (Math.Abs(y[i] - want) > 2e-7 * want) Assert.Fail($"exp({x[i]}) = {y[i]}, float64 {want}");
        }
        float[] edges = [float.NegativeInfinity, -1000f, -87.4f, float.NaN, 88.72f, 88.73f, float.PositiveInfinity, 0f, -0f];
        var e = new float[edges.Length];
        fixed (float* px = edges, py = e) CpuMath.Exp(px, py, edges.Length);
        Assert.That(e[..3], Is.All.EqualTo(0f), "below the smallest normal result: 0");
        Assert.That(float.IsNaN(e[3]), "NaN stays NaN");
        Assert.That(e[4], Is.EqualTo(MathF.Exp(88.72f)).Within(1e-7 * MathF.Exp(88.72f)), "the top of float's range is finite");
        Assert.That(e[5..7], Is.All.EqualTo(float.PositiveInfinity), "above it: +inf");
        Assert.That(e[7..], Is.All.EqualTo(1f));
    }

    [Test]
    public void SpanForms_GiveAValueIndependentOfItsPositionInTheSpan()
    {
        // A value computed in the vector body and the same value in the padded tail agree bitwise.
        var x = Rand.Uniform(3, 13, -5f, 5f);
        var shifted = new float[16];
        Array.Copy(x, 0, shifted, 3, 13);                 // x[8..13): the tail of a 13-span, the body of this one
        var a = new float[13];
        var b = new float[16];
        foreach (var f in new Action<nint, nint, int>[]
        {
            (p, q, k) => CpuMath.Exp((float*)p, (float*)q, k),
            (p, q, k) => CpuMath.Gelu((float*)p, (float*)q, k, tanhForm: false),
            (p, q, k) => CpuMath.Gelu((float*)p, (float*)q, k, tanhForm: true),
        })
        {
            fixed (float* px = x, pa = a, ps = shifted, pb = b)
            {
                f((nint)px, (nint)pa, 13);
                f((nint)ps, (nint)pb, 16);
            }
            Assert.That(b[3..], Is.EqualTo(a));
        }
    }

    [TestCase(false)]
    [TestCase(true)]
    public void Gelu_SpanForm_MatchesScalar(bool tanhForm)
    {
        var x = Inputs();
        var y = new float[x.Length];
        fixed (float* px = x, py = y) CpuMath.Gelu(px, py, x.Length, tanhForm);
        for (int i = 0; i < x.Length; i++)
            Near(y[i], tanhForm ? CpuMath.GeluTanh(x[i]) : CpuMath.Gelu(x[i]), x[i], tanhForm ? "gelu_tanh" : "gelu");
    }

    [TestCase(false)]
    [TestCase(true)]
    public void GeluBackward_SpanForm_MatchesScalar(bool tanhForm)
    {
        var x = Inputs().Where(float.IsFinite).ToArray();
        var dy = Rand.Uniform(2, x.Length, -2f, 2f);
        var dx = new float[x.Length];
        fixed (float* px = x, pg = dy, pd = dx) CpuMath.GeluBackward(px, pg, pd, x.Length, tanhForm);
        for (int i = 0; i < x.Length; i++)
            Near(dx[i], dy[i] * (tanhForm ? CpuMath.GeluTanhGrad(x[i]) : CpuMath.GeluGrad(x[i])), x[i], tanhForm ? "gelu_tanh'" : "gelu'");
    }

    [Test]
    public void ReluBackward_IsTheScalarRuleBitForBit_NaNAndSignedZerosIncluded()
    {
        float[] x = [.. Inputs(), float.NaN, float.NegativeInfinity, float.Epsilon, -float.Epsilon, -0f];   // a tail past the 8 lanes
        var dy = Rand.Uniform(2, x.Length, -3f, 3f);
        dy[^1] = -0f;
        var device = Device.CreateCpu("relu-backward");
        using var tx = Tensor.FromArray(x, new Shape(x.Length), device);
        using var tdy = Tensor.FromArray(dy, new Shape(x.Length), device);
        using var tdx = Tensor.Empty(new Shape(x.Length), device);
        CpuBackend.Instance.ActivationBackward(UnaryOp.Relu, tx, tdy, tdx);
        var got = tdx.ToArray().Select(BitConverter.SingleToInt32Bits);
        var want = x.Select((v, i) => BitConverter.SingleToInt32Bits(v > 0f ? dy[i] : 0f));
        Assert.That(got, Is.EqualTo(want));
    }
}
