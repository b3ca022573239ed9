using Sbp.PtxSim.Tests.Support;

namespace Sbp.PtxSim.Tests;

/// <summary>
/// .approx / .full results: inside the error bound NVIDIA documents, not always the correctly rounded value, special
/// values exact, and reproducible for a seed. The bounds are restated here from their sources (PTX ISA 8.x section
/// 9.7.3, CUDA C++ Programming Guide intrinsic-function table) rather than read from the simulator.
/// </summary>
public class ApproxTests
{
    private const string Store = "\n mov.b32 %r3, %f3;";

    private static double Ulp(double v) => Math.ScaleB(1.0, Math.Max(Math.ILogB(v), -126) - 23);

    /// <summary>One approximate instruction: the PTX, its exact value, its bound and where its inputs come from.</summary>
    public sealed record Case(string Name, string Ptx, Func<double, double, double> Exact, Func<double, double, double, double> Bound, Func<Random, float> A, Func<Random, float> B)
    {
        public override string ToString() => Name;
    }

    private static float Uniform(Random r, double lo, double hi) => (float)(lo + (hi - lo) * r.NextDouble());

    private static float LogUniform(Random r, double lo, double hi) => (float)Math.Exp(Math.Log(lo) + (Math.Log(hi) - Math.Log(lo)) * r.NextDouble());

    private static float Signed(Random r, double lo, double hi) => LogUniform(r, lo, hi) * (r.Next(2) == 0 ? -1 : 1);

    public static readonly Case[] Cases =
    [
        // ex2.approx.f32: relative 2^-22 (PTX ISA, ex2).
        new("ex2", "ex2.approx.f32 %f3, %f1;", (a, b) => Math.Pow(2, a), (a, b, e) => Math.ScaleB(Math.Abs(e), -22), r => Uniform(r, -30, 30), r => 0),
        // lg2.approx.f32: absolute 2^-22 on [0.5, 2], else 2 ulp (CUDA guide, __log2f).
        new("lg2", "lg2.approx.f32 %f3, %f1;", (a, b) => Math.Log2(a), (a, b, e) => a is >= 0.5 and <= 2 ? Math.ScaleB(1, -22) : 2 * Ulp(e),
            r => r.Next(2) == 0 ? Uniform(r, 0.5, 2) : LogUniform(r, 1e-20, 1e20), r => 0),
        // rsqrt.approx.f32: relative 2^-22.9 (PTX ISA, rsqrt).
        new("rsqrt", "rsqrt.approx.f32 %f3, %f1;", (a, b) => 1 / Math.Sqrt(a), (a, b, e) => Math.Pow(2, -22.9) * Math.Abs(e), r => LogUniform(r, 1e-30, 1e30), r => 0),
        // rcp.approx.f32: 1 ulp (PTX ISA, rcp).
        new("rcp", "rcp.approx.f32 %f3, %f1;", (a, b) => 1 / a, (a, b, e) => Ulp(e), r => Signed(r, 1e-30, 1e30), r => 0),
        // sqrt.approx.f32: 1 ulp (CUDA guide, sqrtf with -prec-sqrt=false on compute capability >= 5.2).
        new("sqrt", "sqrt.approx.f32 %f3, %f1;", (a, b) => Math.Sqrt(a), (a, b, e) => Ulp(e), r => LogUniform(r, 1e-30, 1e30), r => 0),
        // sin/cos.approx.f32: absolute 2^-20.9 on [-pi, pi] (PTX ISA, sin / cos).
        new("sin", "sin.approx.f32 %f3, %f1;", (a, b) => Math.Sin(a), (a, b, e) => Math.Pow(2, -20.9), r => Uniform(r, -Math.PI, Math.PI), r => 0),
        new("cos", "cos.approx.f32 %f3, %f1;", (a, b) => Math.Cos(a), (a, b, e) => Math.Pow(2, -20.9), r => Uniform(r, -Math.PI, Math.PI), r => 0),
        // tanh.approx.f32: relative 2^-10.987 (PTX ISA, tanh).
        new("tanh", "tanh.approx.f32 %f3, %f1;", (a, b) => Math.Tanh(a), (a, b, e) => Math.Pow(2, -10.987) * Math.Abs(e), r => Uniform(r, -6, 6), r => 0),
        // div.approx.f32: 2 ulp for |b| in [2^-126, 2^126]; div.full.f32: 2 ulp everywhere (PTX ISA, div).
        new("div.approx", "div.approx.f32 %f3, %f1, %f2;", (a, b) => a / b, (a, b, e) => 2 * Ulp(e), r => Signed(r, 1e-10, 1e10), r => Signed(r, 1e-10, 1e10)),
        new("div.full", "div.full.f32 %f3, %f1, %f2;", (a, b) => a / b, (a, b, e) => 2 * Ulp(e), r => Signed(r, 1e-10, 1e10), r => Signed(r, 1e-10, 1e10)),
    ];

    private static (float[] A, float[] B) Inputs(Case c)
    {
        var rng = new Random(c.Name.Length * 7919 + 17);
        return (Enumerable.Range(0, 1024).Select(_ => c.A(rng)).ToArray(), Enumerable.Range(0, 1024).Select(_ => c.B(rng)).ToArray());
    }

    private static float[] Run(string ptx, float[] a, float[] b, ulong? seed = null)
    {
        var h = new Harness();
        if (seed is { } s) h.Sim.Seed = s;
        return h.RunElementwise(ptx + Store, a, b);
    }

    [TestCaseSource(nameof(Cases))]
    public void WithinTheDocumentedBoundButNotAlwaysCorrectlyRounded(Case c)
    {
        var (a, b) = Inputs(c);
        var got = Run(c.Ptx, a, b);
        int inexact = 0;
        for (int k = 0; k < a.Length; k++)
        {
            double e = c.Exact(a[k], b[k]);
            Assert.That(Math.Abs(got[k] - e), Is.LessThanOrEqualTo(c.Bound(a[k], b[k], e)), $"{c.Name}({a[k]:R}, {b[k]:R}) = {got[k]:R}, exact {e:R}");
            if (got[k] != (float)e) inexact++;
        }
        Assert.That(inexact, Is.GreaterThan(a.Length / 4), $"{c.Name}: only {inexact} of {a.Length} results differ from the correctly rounded one");
    }

    [TestCaseSource(nameof(Cases))]
    public void SameSeedSameBitsOtherSeedOtherBits(Case c)
    {
        var (a, b) = Inputs(c);
        var first = Run(c.Ptx, a, b, seed: 1);
        Assert.That(Run(c.Ptx, a, b, seed: 1), Is.EqualTo(first), "a seed replays its results bit for bit");
        var other = Run(c.Ptx, a, b, seed: 2);
        Assert.That(Enumerable.Range(0, a.Length).Count(k => other[k] != first[k]), Is.GreaterThan(a.Length / 4), "another seed models another GPU");
    }

    [Test]
    public void SameInputSameResultInEveryThread()
    {
        // The error is a function of the input, like a hardware unit: recomputing a value (a backward pass redoing the
        // forward's exp) gives the very same bits.
        var a = Enumerable.Repeat(0.3f, 256).ToArray();
        var got = Run("ex2.approx.ftz.f32 %f3, %f1;", a, new float[256]);
        Assert.That(got.Distinct().Count(), Is.EqualTo(1));
    }

    [Test]
    public void SpecialValuesAreExact()
    {
        float inf = float.PositiveInfinity, nan = float.NaN;
        var a = new[] { 0f, -0f, -inf, inf, nan };
        Assert.That(Run("ex2.approx.f32 %f3, %f1;", a, new float[5]), Is.EqualTo(new[] { 1f, 1f, 0f, inf, nan }));
        Assert.That(Run("lg2.approx.f32 %f3, %f1;", [.. a, 1f], new float[6]), Is.EqualTo(new[] { -inf, -inf, nan, inf, nan, 0f }));
        Assert.That(Run("rsqrt.approx.f32 %f3, %f1;", a, new float[5]), Is.EqualTo(new[] { inf, -inf, nan, 0f, nan }));
        var rcp = Run("rcp.approx.f32 %f3, %f1;", a, new float[5]);
        Assert.That(rcp[..4].Select(Harness.Bits), Is.EqualTo(new[] { inf, -inf, -0f, 0f }.Select(Harness.Bits)));
        Assert.That(float.IsNaN(rcp[4]), Is.True);
        Assert.That(Run("tanh.approx.f32 %f3, %f1;", [0f, inf, -inf], new float[3]), Is.EqualTo(new[] { 0f, 1f, -1f }));
        Assert.That(Run("sin.approx.f32 %f3, %f1;", [0f, inf], new float[2]), Is.EqualTo(new[] { 0f, nan }));
    }

    [Test]
    public void BoundedFunctionsStayInTheirRange()
    {
        // |tanh|, |sin|, |cos| <= 1 even at the bound (a kernel taking sqrt(1 - tanh^2) must not see a NaN).
        var a = Enumerable.Range(0, 1024).Select(k => (k - 512) / 32f).ToArray();
        foreach (var op in new[] { "tanh", "sin", "cos" })
            Assert.That(Run($"{op}.approx.f32 %f3, %f1;", a, new float[1024]).Max(MathF.Abs), Is.LessThanOrEqualTo(1f), op);
    }

    [Test]
    public void DivApproxFlushesTheQuotientForHugeDivisors()
    {
        // PTX ISA, div: for 2^126 < |b| < 2^128, div.approx.f32 returns 0, or NaN when a is infinite (a * rcp(b),
        // and rcp(b) underflows). div.full and div.rn scale the operands and keep the quotient.
        float big = MathF.ScaleB(1.5f, 126);
        var a = new[] { 1e30f, -4f, float.PositiveInfinity };
        var b = new[] { big, big, big };
        var got = Run("div.approx.f32 %f3, %f1, %f2;", a, b);
        Assert.That(got[..2], Is.EqualTo(new[] { 0f, -0f }));
        Assert.That(float.IsNaN(got[2]), Is.True);
        var full = Run("div.full.f32 %f3, %f1, %f2;", a, b);
        double q = (double)a[0] / big;
        Assert.That(Math.Abs(full[0] - q), Is.LessThanOrEqualTo(2 * Ulp(q)));
    }
}
