using System.Numerics;
using Sbp.PtxSim.Model;

namespace Sbp.PtxSim.Execution;

internal interface IApproxUn { static abstract float Op(float a, ulong seed); }
internal interface IApproxBin { static abstract float Op(float a, float b, ulong seed); }

/// <summary>
/// The .approx / .full instructions as NVIDIA documents them: not correctly rounded, only within a stated maximum
/// error. A result is the exact value (in double) moved by a seeded pseudo-random error inside that bound, rounded to
/// f32 and stepped back toward the exact value if rounding left it outside. The error is a pure function of
/// (seed, operation, input bits), like a hardware unit: the same input gives the same result in every thread,
/// instruction and launch, and another seed models another GPU. One input in four gets an error at the bound
/// (pessimistic), the others one uniform in it. NaN, infinities, exact zeros, results that round to zero or overflow,
/// and the special values the PTX ISA tables list stay as IEEE rounding gives them; sin, cos and tanh stay in [-1, 1].
/// Bounds: PTX ISA 8.x section 9.7.3 ("Floating Point Instructions", Notes of each instruction) and the CUDA C++
/// Programming Guide (Mathematical Functions appendix, intrinsic functions table, whose __fdividef, __log2f, __sinf,
/// __cosf compile to these instructions); where the two differ the looser bound is used.
/// </summary>
internal static class Approx
{
    /// <summary>ex2.approx.f32: relative error 2^-22 (PTX ISA, ex2; about 2 ulp, as exp2f's 2 ulp in the CUDA guide).</summary>
    public static readonly double Ex2Rel = Math.ScaleB(1.0, -22);

    /// <summary>lg2.approx.f32: absolute error 2^-22 for x in [0.5, 2], else 2 ulp (CUDA guide, __log2f = lg2.approx.f32).</summary>
    public static readonly double Lg2Abs = Math.ScaleB(1.0, -22);

    /// <summary>rsqrt.approx.f32: relative error 2^-22.9 over the whole range (PTX ISA, rsqrt).</summary>
    public static readonly double RsqrtRel = Math.Pow(2.0, -22.9);

    /// <summary>sin/cos.approx.f32: absolute error 2^-20.9 in [-pi, pi], 2^-20.5 in [-100 pi, 100 pi] (PTX ISA, sin/cos).</summary>
    public static readonly double SinCosAbsPi = Math.Pow(2.0, -20.9), SinCosAbs100Pi = Math.Pow(2.0, -20.5);

    /// <summary>tanh.approx.f32: relative error 2^-10.987, about 2^-11 (PTX ISA, tanh).</summary>
    public static readonly double TanhRel = Math.Pow(2.0, -10.987);

    // rcp.approx.f32: 1 ulp over the full range (PTX ISA, rcp). sqrt.approx.f32: 1 ulp (CUDA guide: sqrtf compiled
    // with -prec-sqrt=false, i.e. sqrt.approx.f32, on compute capability >= 5.2). div.approx.f32: 2 ulp for
    // |b| in [2^-126, 2^126], and 0 (NaN if a is infinite) for 2^126 < |b| < 2^128 (PTX ISA, div; CUDA guide,
    // __fdividef). div.full.f32: 2 ulp over the full range (PTX ISA, div).
    public const double RcpUlps = 1, SqrtUlps = 1, DivUlps = 2;
    private static readonly float Two126 = MathF.ScaleB(1f, 126);

    /// <summary>One float ulp at the magnitude of v (subnormal spacing below 2^-126).</summary>
    public static double Ulp(double v) => Math.ScaleB(1.0, Math.Max(Math.ILogB(v), -126) - 23);

    /// <summary>SplitMix64's finaliser: a well-mixed 64-bit hash.</summary>
    public static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>A pseudo-random u in [-1, 1] from (seed, op, key); one in four is exactly -1 or +1.</summary>
    public static double Noise(ulong seed, int op, ulong key)
    {
        ulong h = Mix(seed ^ Mix(key + (ulong)op * 0x9E3779B97F4A7C15UL));
        double u = (h >> 11) * (2.0 / (1UL << 53)) - 1.0;
        return (h & 3) == 0 ? (u < 0 ? -1.0 : 1.0) : u;
    }

    /// <summary>exact + u * bound rounded to f32, then stepped toward exact while it lies outside the bound.</summary>
    public static float Within(double exact, double bound, double u)
    {
        float cr = (float)exact;
        if (exact == 0 || cr == 0 || !float.IsFinite(cr)) return cr;
        float r = (float)(exact + u * bound);
        while (r != cr && !(Math.Abs((double)r - exact) <= bound))
            r = (double)r > exact ? MathF.BitDecrement(r) : MathF.BitIncrement(r);
        return r;
    }

    private static ulong Bits(float a) => BitConverter.SingleToUInt32Bits(a);

    private static ulong Bits(float a, float b) => Bits(a) | Bits(b) << 32;

    public struct Ex2 : IApproxUn
    {
        // ex2(+-0) = +1 exactly (the special-value table of PTX ISA ex2).
        public static float Op(float a, ulong seed)
        {
            if (a == 0) return 1f;
            double e = Math.Pow(2.0, a);
            return Within(e, Ex2Rel * e, Noise(seed, 1, Bits(a)));
        }
    }

    public struct Lg2 : IApproxUn
    {
        public static float Op(float a, ulong seed)
        {
            double e = Math.Log2(a);
            double bound = a is >= 0.5f and <= 2f ? Lg2Abs : 2 * Ulp(e);
            return Within(e, bound, Noise(seed, 2, Bits(a)));
        }
    }

    public struct Rsqrt : IApproxUn
    {
        public static float Op(float a, ulong seed)
        {
            double e = 1.0 / Math.Sqrt(a);
            return Within(e, RsqrtRel * Math.Abs(e), Noise(seed, 3, Bits(a)));
        }
    }

    public struct Rcp : IApproxUn
    {
        public static float Op(float a, ulong seed)
        {
            double e = 1.0 / a;
            return Within(e, RcpUlps * Ulp(e), Noise(seed, 4, Bits(a)));
        }
    }

    public struct Sqrt : IApproxUn
    {
        public static float Op(float a, ulong seed)
        {
            double e = Math.Sqrt(a);
            return Within(e, SqrtUlps * Ulp(e), Noise(seed, 5, Bits(a)));
        }
    }

    public struct Sin : IApproxUn
    {
        public static float Op(float a, ulong seed) => Math.Clamp(Within(Math.Sin(a), SinCosBound(a), Noise(seed, 6, Bits(a))), -1f, 1f);
    }

    public struct Cos : IApproxUn
    {
        public static float Op(float a, ulong seed) => Math.Clamp(Within(Math.Cos(a), SinCosBound(a), Noise(seed, 7, Bits(a))), -1f, 1f);
    }

    /// <summary>Beyond 100 pi the ISA gives no bound; the range reduction's error grows with |x|, so the bound does too.</summary>
    private static double SinCosBound(float a)
    {
        double x = Math.Abs(a);
        return x <= Math.PI ? SinCosAbsPi : x <= 100 * Math.PI ? SinCosAbs100Pi : SinCosAbs100Pi * x / (100 * Math.PI);
    }

    public struct Tanh : IApproxUn
    {
        public static float Op(float a, ulong seed)
        {
            if (float.IsInfinity(a)) return float.Sign(a);   // tanh(+-Inf) = +-1 (PTX ISA, tanh)
            double e = Math.Tanh(a);
            return Math.Clamp(Within(e, TanhRel * Math.Abs(e), Noise(seed, 8, Bits(a))), -1f, 1f);
        }
    }

    public struct DivApprox : IApproxBin
    {
        public static float Op(float a, float b, ulong seed)
        {
            if (float.IsFinite(b) && Math.Abs(b) > Two126)
                return float.IsFinite(a) ? a * float.CopySign(0f, b) : float.NaN;   // a * rcp(b), where rcp(b) flushed to 0
            double e = (double)a / b;
            return Within(e, DivUlps * Ulp(e), Noise(seed, 9, Bits(a, b)));
        }
    }

    public struct DivFull : IApproxBin
    {
        public static float Op(float a, float b, ulong seed)
        {
            double e = (double)a / b;
            return Within(e, DivUlps * Ulp(e), Noise(seed, 10, Bits(a, b)));
        }
    }
}

internal static partial class Alu
{
    public static void UnApproxF32<TOp>(Machine m, Warp w, Instr i, uint exec) where TOp : IApproxUn
    {
        var r = w.R;
        int d = i.D, a = i.A;
        bool ftz = i.Ftz, sat = i.Sat;
        ulong seed = m.Seed;
        for (uint k = exec; k != 0; k &= k - 1)
        {
            int l = BitOperations.TrailingZeroCount(k);
            float x = F(r[a + l]);
            if (ftz) x = Ftz(x);
            float z = TOp.Op(x, seed);
            if (ftz) z = Ftz(z);
            if (sat) z = Saturate(z);
            r[d + l] = Fb(z);
        }
    }

    public static void BinApproxF32<TOp>(Machine m, Warp w, Instr i, uint exec) where TOp : IApproxBin
    {
        var r = w.R;
        int d = i.D, a = i.A, b = i.B;
        bool ftz = i.Ftz, sat = i.Sat;
        ulong seed = m.Seed;
        for (uint k = exec; k != 0; k &= k - 1)
        {
            int l = BitOperations.TrailingZeroCount(k);
            float x = F(r[a + l]), y = F(r[b + l]);
            if (ftz) { x = Ftz(x); y = Ftz(y); }
            float z = TOp.Op(x, y, seed);
            if (ftz) z = Ftz(z);
            if (sat) z = Saturate(z);
            r[d + l] = Fb(z);
        }
    }
}
