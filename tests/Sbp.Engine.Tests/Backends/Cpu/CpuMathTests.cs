using Sbp.Backends.Cpu;
using Sbp.Engine.Tests.Support;

namespace Sbp.Engine.Tests.Backends.Cpu;

/// <summary>The vectorized GELU span forms against the scalar float64 forms, element by element.</summary>
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
}
