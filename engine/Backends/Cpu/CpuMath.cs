namespace Sbp.Backends.Cpu;

/// <summary>Scalar math the CPU kernels share (GELU and its derivative).</summary>
static class CpuMath
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
}
