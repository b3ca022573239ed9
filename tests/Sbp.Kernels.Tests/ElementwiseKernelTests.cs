using Sbp.Backends;
using Sbp.Kernels.Tests.Support;

namespace Sbp.Kernels.Tests;

/// <summary>kernels/elementwise.ptx against CpuBackend.Binary / Unary / ActivationBackward.</summary>
public sealed class ElementwiseKernelTests : KernelTest
{
    static readonly float[] Specials = [0f, -0f, float.NaN, float.PositiveInfinity, float.NegativeInfinity, 1e-30f, -1e-30f];

    [TestCase("add_f32", 1, 32u)]
    [TestCase("add_f32", 33, 32u)]
    [TestCase("add_f32", 1000, 128u)]
    [TestCase("mul_f32", 31, 64u)]
    [TestCase("mul_f32", 4099, 256u)]
    public void BinaryMatchesCpu(string entry, int n, uint block)
    {
        var a = Rand.Uniform(1, n, -3f, 3f);
        var b = Rand.Uniform(2, n, -3f, 3f);
        var expected = Empty(n);
        Device.Backend.Binary(entry == "add_f32" ? BinaryOp.Add : BinaryOp.Mul, T(a, n), T(b, n), expected);

        ulong y = Gpu.Poisoned(n);
        Gpu.Launch(entry, SimGpu.Grid(n, block, 3), block, Ptr(Gpu.Upload(a)), Ptr(Gpu.Upload(b)), Ptr(y), U32(n));
        Check.Exact(expected.ToArray(), Gpu.Download(y, n), entry);
    }

    [Test]
    public void BinaryMayWriteInPlace()
    {
        int n = 77;
        var a = Rand.Uniform(3, n);
        var b = Rand.Uniform(4, n);
        ulong pa = Gpu.Upload(a);
        Gpu.Launch("add_f32", 2, 32, Ptr(pa), Ptr(Gpu.Upload(b)), Ptr(pa), U32(n));
        Check.Exact(a.Zip(b, (x, y) => x + y).ToArray(), Gpu.Download(pa, n), "add_f32 in place");
    }

    [TestCase(1, 0.5f)]
    [TestCase(130, -2.75f)]
    [TestCase(1025, 1e-3f)]
    public void ScaleMatchesCpu(int n, float alpha)
    {
        var x = Rand.Uniform(5, n, -10f, 10f);
        var expected = Empty(n);
        Device.Backend.Unary(UnaryOp.MulScalar, T(x, n), expected, alpha);
        ulong y = Gpu.Poisoned(n);
        Gpu.Launch("scale_f32", SimGpu.Grid(n, 64, 3), 64, Ptr(Gpu.Upload(x)), Ptr(y), U32(n), F32(alpha));
        Check.Exact(expected.ToArray(), Gpu.Download(y, n), "scale_f32");
    }

    [TestCase(7, 32u)]
    [TestCase(1000, 128u)]
    public void ReluForwardAndBackwardMatchCpu(int n, uint block)
    {
        var x = Rand.Uniform(6, n, -2f, 2f);
        Specials.CopyTo(x, 0);
        var dy = Rand.Uniform(7, n);
        var expected = Empty(n);
        var expectedDx = Empty(n);
        Device.Backend.Unary(UnaryOp.Relu, T(x, n), expected);
        Device.Backend.ActivationBackward(UnaryOp.Relu, T(x, n), T(dy, n), expectedDx);

        ulong px = Gpu.Upload(x), y = Gpu.Poisoned(n), dx = Gpu.Poisoned(n);
        Gpu.Launch("relu_f32", SimGpu.Grid(n, block, 3), block, Ptr(px), Ptr(y), U32(n));
        Gpu.Launch("relu_bwd_f32", SimGpu.Grid(n, block, 3), block, Ptr(px), Ptr(Gpu.Upload(dy)), Ptr(dx), U32(n));
        Check.Exact(expected.ToArray(), Gpu.Download(y, n), "relu_f32");
        Check.Exact(expectedDx.ToArray(), Gpu.Download(dx, n), "relu_bwd_f32");
    }

    // GELU on the GPU uses ex2.approx and float arithmetic; the CPU evaluates in double.
    [TestCase("gelu_tanh_f32", UnaryOp.GeluTanh, 1000)]
    [TestCase("gelu_erf_f32", UnaryOp.Gelu, 1000)]
    [TestCase("gelu_tanh_f32", UnaryOp.GeluTanh, 37)]
    [TestCase("gelu_erf_f32", UnaryOp.Gelu, 37)]
    public void GeluForwardMatchesCpu(string entry, UnaryOp op, int n)
    {
        var x = Inputs(n);
        var expected = Empty(n);
        Device.Backend.Unary(op, T(x, n), expected);
        ulong y = Gpu.Poisoned(n);
        Gpu.Launch(entry, SimGpu.Grid(n, 128, 3), 128, Ptr(Gpu.Upload(x)), Ptr(y), U32(n));
        Check.Close(expected.ToArray(), Gpu.Download(y, n), 2e-5, 1e-6, entry);
    }

    [TestCase("gelu_tanh_bwd_f32", UnaryOp.GeluTanh, 1000)]
    [TestCase("gelu_erf_bwd_f32", UnaryOp.Gelu, 1000)]
    [TestCase("gelu_tanh_bwd_f32", UnaryOp.GeluTanh, 37)]
    [TestCase("gelu_erf_bwd_f32", UnaryOp.Gelu, 37)]
    public void GeluBackwardMatchesCpu(string entry, UnaryOp op, int n)
    {
        var x = Inputs(n);
        var dy = Rand.Uniform(8, n, -2f, 2f);
        var expected = Empty(n);
        Device.Backend.ActivationBackward(op, T(x, n), T(dy, n), expected);
        ulong dx = Gpu.Poisoned(n);
        Gpu.Launch(entry, SimGpu.Grid(n, 128, 3), 128, Ptr(Gpu.Upload(x)), Ptr(Gpu.Upload(dy)), Ptr(dx), U32(n));
        Check.Close(expected.ToArray(), Gpu.Download(dx, n), 2e-5, 1e-6, entry);
    }

    [Test]
    public void GeluMatchesTheFloat64Formula()
    {
        // Independent of the CPU backend: x Phi(x) with Phi from the complementary error function
        // evaluated by its continued fraction / series in float64, and the tanh form with Math.Tanh.
        var x = Inputs(200);
        ulong px = Gpu.Upload(x), ye = Gpu.Poisoned(x.Length), yt = Gpu.Poisoned(x.Length);
        Gpu.Launch("gelu_erf_f32", 2, 64, Ptr(px), Ptr(ye), U32(x.Length));
        Gpu.Launch("gelu_tanh_f32", 2, 64, Ptr(px), Ptr(yt), U32(x.Length));
        var erf = x.Select(v => (float)(v * NormalCdf(v))).ToArray();
        var tanh = x.Select(v => (float)(0.5 * v * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (v + 0.044715 * (double)v * v * v))))).ToArray();
        Check.Close(erf, Gpu.Download(ye, x.Length), 2e-5, 1e-6, "gelu_erf_f32 vs float64");
        Check.Close(tanh, Gpu.Download(yt, x.Length), 2e-5, 1e-6, "gelu_tanh_f32 vs float64");
    }

    /// <summary>Normal values, a sweep over [-9, 9], and a few extremes.</summary>
    static float[] Inputs(int n)
    {
        var x = Rand.Normal(9, n, 2f);
        for (int i = 0; i < Math.Min(n, 50); i++) x[i] = -9f + 18f * i / 49f;
        if (n > 60) { x[50] = 0f; x[51] = -30f; x[52] = 30f; x[53] = 1e-20f; x[54] = -1e-20f; }
        return x;
    }

    /// <summary>Phi(x) = erfc(-x / sqrt 2) / 2 in float64 (Abramowitz-Stegun 7.1.26 is too coarse; use a series / continued fraction).</summary>
    static double NormalCdf(double x)
    {
        double z = -x / Math.Sqrt(2);
        return 0.5 * Erfc(z);
    }

    static double Erfc(double z)
    {
        if (z < 0) return 2 - Erfc(-z);
        if (z < 2.5)
        {
            // erf series: 2/sqrt(pi) sum (-1)^n z^(2n+1) / (n! (2n+1))
            double sum = 0, term = z;
            for (int k = 0; k < 200; k++)
            {
                double add = term / (2 * k + 1);
                sum += add;
                if (Math.Abs(add) < 1e-18) break;
                term *= -z * z / (k + 1);
            }
            return 1 - 2 / Math.Sqrt(Math.PI) * sum;
        }
        // Continued fraction (Lentz) for large z.
        double f = z, c = z, d = 0, tiny = 1e-300;
        for (int k = 1; k < 300; k++)
        {
            double a = k / 2.0;
            d = z + a * d; d = Math.Abs(d) < tiny ? tiny : d; d = 1 / d;
            c = z + a / c; c = Math.Abs(c) < tiny ? tiny : c;
            double delta = c * d;
            f *= delta;
            if (Math.Abs(delta - 1) < 1e-16) break;
        }
        return Math.Exp(-z * z) / Math.Sqrt(Math.PI) / f;
    }
}
