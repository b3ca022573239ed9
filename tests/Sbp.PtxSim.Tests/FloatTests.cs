using Sbp.PtxSim.Tests.Support;

namespace Sbp.PtxSim.Tests;

/// <summary>.f32 instructions: IEEE single results, fused multiply-add, NaN rules, .ftz and .sat (.approx forms: ApproxTests).</summary>
public class FloatTests
{
    private static readonly float[] A = [1.5f, -2.25f, 3e10f, 1e-30f, 0f, -0f, 7f, float.PositiveInfinity, 0.1f, 2f, 1e-45f, 100f];
    private static readonly float[] B = [0.5f, 4f, -3e10f, 1e-10f, 3f, 0f, 3f, 2f, 0.2f, 0.5f, 2f, 1e-3f];

    private static void Check(string body, Func<float, float, float> expected)
    {
        var got = new Harness().RunElementwise(body, A, B);
        for (int k = 0; k < A.Length; k++)
            Assert.That(Harness.Bits(got[k]), Is.EqualTo(Harness.Bits(expected(A[k], B[k]))), $"{body} with a={A[k]}, b={B[k]}: got {got[k]}");
    }

    private const string Store = "\n mov.b32 %r3, %f3;";

    [Test] public void Add() => Check("add.f32 %f3, %f1, %f2;" + Store, (a, b) => a + b);
    [Test] public void SubMul() => Check("sub.f32 %f4, %f1, %f2;\n mul.rn.f32 %f3, %f4, %f2;" + Store, (a, b) => (a - b) * b);
    [Test] public void FmaIsFused() => Check("fma.rn.f32 %f3, %f1, %f2, 0f3F800000;" + Store, (a, b) => MathF.FusedMultiplyAdd(a, b, 1f));
    [Test] public void MadRnIsFused() => Check("mad.rn.f32 %f3, %f1, %f1, %f2;" + Store, (a, b) => MathF.FusedMultiplyAdd(a, a, b));
    [Test] public void Div() => Check("div.rn.f32 %f3, %f1, %f2;" + Store, (a, b) => a / b);
    [Test] public void Rcp() => Check("rcp.rn.f32 %f3, %f2;" + Store, (a, b) => 1f / b);
    [Test] public void Sqrt() => Check("sqrt.rn.f32 %f3, %f2;" + Store, (a, b) => MathF.Sqrt(b));
    [Test] public void NegAbs() => Check("neg.f32 %f4, %f1;\n abs.f32 %f5, %f2;\n sub.f32 %f3, %f4, %f5;" + Store, (a, b) => -a - MathF.Abs(b));

    [Test]
    public void FtzFlushesSubnormalsAndSatClamps()
    {
        // 1e-30 * 1e-10 underflows to a subnormal: flushed to +0 under .ftz; 1e-45 (subnormal input) * 2 -> 0.
        Check("mul.ftz.f32 %f3, %f1, %f2;" + Store, (a, b) =>
        {
            static float Ftz(float x) => (BitConverter.SingleToUInt32Bits(x) & 0x7F800000) == 0 ? MathF.CopySign(0f, x) : x;
            return Ftz(Ftz(a) * Ftz(b));
        });
        Check("add.sat.f32 %f3, %f1, %f2;" + Store, (a, b) => { float s = a + b; return !(s > 0) ? 0f : s > 1 ? 1f : s; });
    }

    [Test]
    public void MinMaxPreferTheNonNaNOperand()
    {
        var got = new Harness().RunElementwise("min.f32 %f4, %f1, %f2;\n max.f32 %f5, %f1, %f2;\n sub.f32 %f3, %f5, %f4;\n mov.b32 %r3, %f3;",
            [float.NaN, 1f, 5f, -0f], [2f, float.NaN, -3f, 0f]);
        Assert.That(got, Is.EqualTo(new[] { 0f, 0f, 8f, 0f }));
    }

    [Test]
    public void ImmediateForms()
    {
        // 0f hex bits, decimal double literal rounded to f32, and an integer literal with .f32 taken as a value.
        var got = new Harness().RunElementwise("add.f32 %f3, %f1, 0f3F000000;\n add.f32 %f3, %f3, 0.25;\n mov.f32 %f4, 2;\n mul.f32 %f3, %f3, %f4;\n mov.b32 %r3, %f3;",
            [1f], [0f]);
        Assert.That(got[0], Is.EqualTo(3.5f));
    }
}
