using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Sbp.Backends.Cpu;

/// <summary>
/// Math the CPU kernels share: exp, GELU and its derivative (scalar float64 forms, and span forms that
/// run them in float32, 8 lanes at a time, the tail too, with the scalar form on machines without
/// 256-bit vectors), and float64 sums of float32 rows.
/// </summary>
static unsafe class CpuMath
{
    const double InvSqrt2 = 0.70710678118654752440;
    const double InvSqrt2Pi = 0.39894228040143267794;
    const double TanhScale = 0.79788456080286535588; // sqrt(2/pi)
    const double TanhCubic = 0.044715;

    /// <summary>erf with relative error below 1.2e-7 (Numerical Recipes' Chebyshev fit of erfc), in double.</summary>
    public static double Erf(double x)
    {
        double z = Math.Abs(x);
        double t = 1.0 / (1.0 + 0.5 * z);
        double erfc = t * Math.Exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
            t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
        return x >= 0 ? 1.0 - erfc : erfc - 1.0;
    }

    public static float Gelu(float x) => (float)(0.5 * x * (1.0 + Erf(x * InvSqrt2)));

    public static float GeluGrad(float x)
    {
        double cdf = 0.5 * (1.0 + Erf(x * InvSqrt2));
        double pdf = InvSqrt2Pi * Math.Exp(-0.5 * (double)x * x);
        return (float)(cdf + x * pdf);
    }

    public static float GeluTanh(float x)
    {
        double u = TanhScale * (x + TanhCubic * x * x * x);
        return (float)(0.5 * x * (1.0 + Math.Tanh(u)));
    }

    public static float GeluTanhGrad(float x)
    {
        double u = TanhScale * (x + TanhCubic * x * x * x);
        double th = Math.Tanh(u);
        return (float)(0.5 * (1.0 + th) + 0.5 * x * (1.0 - th * th) * TanhScale * (1.0 + 3.0 * TanhCubic * x * x));
    }

    // ---- span forms -------------------------------------------------------------------------

    /// <summary>
    /// y[i] = gelu(x[i]) (erf form, or the tanh approximation); y may alias x. With 256-bit vectors every
    /// element, the tail too (through a padded vector), takes the vector formula, so a value does not
    /// depend on where a span starts or ends (rows, parallel chunks, a fused bias).
    /// </summary>
    public static void Gelu(float* x, float* y, int n, bool tanhForm)
    {
        if (!Vector256.IsHardwareAccelerated)
        {
            for (int j = 0; j < n; j++) y[j] = tanhForm ? GeluTanh(x[j]) : Gelu(x[j]);
            return;
        }
        int i = 0;
        for (; i + 8 <= n; i += 8)
        {
            var v = Vector256.Load(x + i);
            Vector256.Store(tanhForm ? GeluTanh(v) : Gelu(v), y + i);
        }
        if (i == n) return;
        var tail = Tail(x + i, n - i);
        var r = tanhForm ? GeluTanh(tail) : Gelu(tail);
        for (int j = 0; i + j < n; j++) y[i + j] = r[j];
    }

    /// <summary>dx[i] = dy[i] * gelu'(x[i]); dx may alias dy or x. The tail as in <see cref="Gelu(float*, float*, int, bool)"/>.</summary>
    public static void GeluBackward(float* x, float* dy, float* dx, int n, bool tanhForm)
    {
        if (!Vector256.IsHardwareAccelerated)
        {
            for (int j = 0; j < n; j++) dx[j] = dy[j] * (tanhForm ? GeluTanhGrad(x[j]) : GeluGrad(x[j]));
            return;
        }
        int i = 0;
        for (; i + 8 <= n; i += 8)
        {
            var v = Vector256.Load(x + i);
            Vector256.Store(Vector256.Load(dy + i) * (tanhForm ? GeluTanhGrad(v) : GeluGrad(v)), dx + i);
        }
        if (i == n) return;
        var r = Tail(dy + i, n - i) * (tanhForm ? GeluTanhGrad(Tail(x + i, n - i)) : GeluGrad(Tail(x + i, n - i)));
        for (int j = 0; i + j < n; j++) dx[i + j] = r[j];
    }

    /// <summary>The last count (&lt; 8) elements at p in a vector, <paramref name="pad"/> after them.</summary>
    public static Vector256<float> Tail(float* p, int count, float pad = 0f)
    {
        var buffer = stackalloc float[8];
        for (int j = 0; j < 8; j++) buffer[j] = j < count ? p[j] : pad;
        return Vector256.Load(buffer);
    }

    /// <summary>y[i] = exp(x[i]) with <see cref="Exp(Vector256{float})"/> (tail through a padded vector); y may alias x.</summary>
    public static void Exp(float* x, float* y, int n)
    {
        if (!Vector256.IsHardwareAccelerated)
        {
            for (int j = 0; j < n; j++) y[j] = MathF.Exp(x[j]);
            return;
        }
        int i = 0;
        for (; i + 8 <= n; i += 8) Exp(Vector256.Load(x + i)).Store(y + i);
        if (i == n) return;
        var r = Exp(Tail(x + i, n - i));
        for (int j = 0; i + j < n; j++) y[i + j] = r[j];
    }

    /// <summary>
    /// exp in float32, 8 lanes: x = n ln2 + r with |r| &lt;= ln2 / 2 (ln2 in two parts), e^r from Cephes'
    /// degree-6 expf polynomial, times 2^n built in exponent bits. Relative error under 1e-7 (about
    /// 1 ulp). Results below the smallest normal float (x &lt; -87.34) are 0, above float's range +inf,
    /// NaN stays NaN. Eight times faster here than Vector256.Exp, which softmax and GELU's gradient spent
    /// most of their time in.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Exp(Vector256<float> x)
    {
        Vector256<float> lo = C(-87.33654475), hi = C(88.72283905);
        var xc = Vector256.MinNative(Vector256.MaxNative(x, lo), hi);
        var n = Vector256.Round(xc * C(1.44269504088896341));
        var r = Fma(n, C(-0.693359375), xc);
        r = Fma(n, C(2.12194440e-4), r);
        var p = Fma(C(1.9875691500e-4), r, C(1.3981999507e-3));
        p = Fma(p, r, C(8.3334519073e-3));
        p = Fma(p, r, C(4.1665795894e-2));
        p = Fma(p, r, C(1.6666665459e-1));
        p = Fma(p, r, C(5.0000001201e-1));
        // 2^n in two factors, each a normal float for every n in [-126, 128].
        var ni = Vector256.ConvertToInt32(n);
        var half = Vector256.ShiftRightArithmetic(ni, 1);
        var bias = Vector256.Create(127);
        var y = (Fma(p, r * r, r) + Vector256<float>.One) * ((half + bias) << 23).AsSingle() * ((ni - half + bias) << 23).AsSingle();
        y = Vector256.ConditionalSelect(Vector256.LessThan(x, lo), Vector256<float>.Zero, y);
        y = Vector256.ConditionalSelect(Vector256.GreaterThan(x, hi), Vector256.Create(float.PositiveInfinity), y);
        return Vector256.ConditionalSelect(Vector256.Equals(x, x), y, x);
    }

    // The vector forms: the scalar formulas in float32, 8 lanes (a few ulp from the float64 forms).

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<float> C(double v) => Vector256.Create((float)v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<float> Fma(Vector256<float> a, Vector256<float> b, Vector256<float> c) => Vector256.FusedMultiplyAdd(a, b, c);

    /// <summary>
    /// erf as an odd rational function x P(x^2) / Q(x^2) on x clamped to [-4, 4] (erf(4) is 1 in float32): the
    /// minimax fit XLA and Eigen use for float32, absolute error under 6e-7, with one division and no exp (the
    /// float64 form above needs an exp, where GELU spent most of its time: 2.8x faster forward and backward).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<float> Erf(Vector256<float> x)
    {
        x = Vector256.MinNative(Vector256.MaxNative(x, C(-4.0)), C(4.0)); // NaN stays NaN in x * (1 + erf) either way
        var x2 = x * x;
        var p = Fma(x2, C(-2.72614225801306e-10), C(2.77068142495902e-08));
        p = Fma(x2, p, C(-2.10102402082508e-06));
        p = Fma(x2, p, C(-5.69250639462346e-05));
        p = Fma(x2, p, C(-7.34990630326855e-04));
        p = Fma(x2, p, C(-2.95459980854025e-03));
        p = Fma(x2, p, C(-1.60960333262415e-02));
        var q = Fma(x2, C(-1.45660718464996e-05), C(-2.13374055278905e-04));
        q = Fma(x2, q, C(-1.68282697438203e-03));
        q = Fma(x2, q, C(-7.37332916720468e-03));
        q = Fma(x2, q, C(-1.42647390514189e-02));
        return x * p / q;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<float> Gelu(Vector256<float> x) => C(0.5) * x * (C(1.0) + Erf(x * C(InvSqrt2)));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<float> GeluGrad(Vector256<float> x)
    {
        var cdf = C(0.5) * (C(1.0) + Erf(x * C(InvSqrt2)));
        var pdf = C(InvSqrt2Pi) * Exp(C(-0.5) * x * x);
        return cdf + x * pdf;
    }

    /// <summary>tanh(u) = sign(u) (1 - 2 / (exp(2 |u|) + 1)); exp overflowing to infinity gives exactly 1.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<float> Tanh(Vector256<float> u)
    {
        var one = C(1.0);
        var m = one - C(2.0) / (Exp(C(2.0) * Vector256.Abs(u)) + one);
        return Vector256.ConditionalSelect(Vector256.LessThan(u, Vector256<float>.Zero), -m, m);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<float> GeluTanh(Vector256<float> x)
    {
        var th = Tanh(C(TanhScale) * (x + C(TanhCubic) * x * x * x));
        return C(0.5) * x * (C(1.0) + th);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<float> GeluTanhGrad(Vector256<float> x)
    {
        var th = Tanh(C(TanhScale) * (x + C(TanhCubic) * x * x * x));
        var one = C(1.0);
        var sech2 = one - th * th;
        var slope = C(0.5) * x * sech2 * C(TanhScale) * (one + C(3.0 * TanhCubic) * x * x);
        // Where tanh saturates (sech^2 = 0) the slope term is 0, also when x^2 overflows (0 * inf).
        return C(0.5) * (one + th) + Vector256.ConditionalSelect(Vector256.Equals(sech2, Vector256<float>.Zero), Vector256<float>.Zero, slope);
    }

    // ---- float64 sums of float32 data -------------------------------------------------------

    /// <summary>sum of x[i] in float64 (4 lanes, then the lanes and the tail in order).</summary>
    public static double Sum(float* x, int n)
    {
        int i = 0;
        double sum = 0;
        if (Vector256.IsHardwareAccelerated && n >= 8)
        {
            var acc = Vector256<double>.Zero;
            for (; i + 8 <= n; i += 8)
            {
                var v = Vector256.Load(x + i);
                acc += Vector256.WidenLower(v) + Vector256.WidenUpper(v);
            }
            sum = Vector256.Sum(acc);
        }
        for (; i < n; i++) sum += x[i];
        return sum;
    }

    /// <summary>sum of (x[i] - mean)^2 in float64.</summary>
    public static double SumSquaredDeviations(float* x, int n, double mean)
    {
        int i = 0;
        double sum = 0;
        if (Vector256.IsHardwareAccelerated && n >= 8)
        {
            var acc = Vector256<double>.Zero;
            var m = Vector256.Create(mean);
            for (; i + 8 <= n; i += 8)
            {
                var v = Vector256.Load(x + i);
                var lo = Vector256.WidenLower(v) - m;
                var hi = Vector256.WidenUpper(v) - m;
                acc += lo * lo + hi * hi;
            }
            sum = Vector256.Sum(acc);
        }
        for (; i < n; i++)
        {
            double d = x[i] - mean;
            sum += d * d;
        }
        return sum;
    }

    /// <summary>sum of g[i] * ((x[i] - mean) * invStd) in float64, the normalized x computed in float32 (as batch norm saves it).</summary>
    public static double DotNormalized(float* g, float* x, int n, float mean, float invStd)
    {
        int i = 0;
        double sum = 0;
        if (Vector256.IsHardwareAccelerated && n >= 8)
        {
            var acc = Vector256<double>.Zero;
            Vector256<float> m = Vector256.Create(mean), inv = Vector256.Create(invStd);
            for (; i + 8 <= n; i += 8)
            {
                var a = Vector256.Load(g + i);
                var b = (Vector256.Load(x + i) - m) * inv;
                acc += Vector256.WidenLower(a) * Vector256.WidenLower(b) + Vector256.WidenUpper(a) * Vector256.WidenUpper(b);
            }
            sum = Vector256.Sum(acc);
        }
        for (; i < n; i++) sum += (double)g[i] * ((x[i] - mean) * invStd);
        return sum;
    }

    /// <summary>sum of x[i] y[i] in float64.</summary>
    public static double Dot(float* x, float* y, int n)
    {
        int i = 0;
        double sum = 0;
        if (Vector256.IsHardwareAccelerated && n >= 8)
        {
            var acc = Vector256<double>.Zero;
            for (; i + 8 <= n; i += 8)
            {
                var a = Vector256.Load(x + i);
                var b = Vector256.Load(y + i);
                acc += Vector256.WidenLower(a) * Vector256.WidenLower(b) + Vector256.WidenUpper(a) * Vector256.WidenUpper(b);
            }
            sum = Vector256.Sum(acc);
        }
        for (; i < n; i++) sum += (double)x[i] * y[i];
        return sum;
    }
}
