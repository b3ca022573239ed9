using System.Runtime.InteropServices;
using Sbp.Rng;
using Sbp.Tensors;

namespace Sbp.Nn;

/// <summary>The nonlinearity a Kaiming or Xavier initializer compensates for (torch.nn.init.calculate_gain).</summary>
public enum Nonlinearity
{
    /// <summary>Gain 1 (also conv and sigmoid).</summary>
    Linear,
    /// <summary>Gain sqrt(2).</summary>
    Relu,
    /// <summary>Gain sqrt(2 / (1 + a^2)) for negative slope a.</summary>
    LeakyRelu,
    /// <summary>Gain 5/3.</summary>
    Tanh,
    /// <summary>Gain 1.</summary>
    Sigmoid,
}

/// <summary>Which fan a Kaiming initializer keeps the variance of: the forward pass (FanIn) or the backward pass (FanOut).</summary>
public enum FanMode
{
    FanIn,
    FanOut,
}

/// <summary>
/// Weight initializers with torch.nn.init's formulas, filling a tensor in place from a
/// <see cref="RandomSource"/>: element i of the tensor uses counter (offset + i) of one
/// <see cref="RandomSource.Take"/> (2 per element for normals), so the same source state gives the
/// same weights on every run, thread count and device. Each call advances the source.
/// Values are generated on the host and copied in once (initialization is not a hot path).
/// None of these is recorded on a tape (they write into the tensor's memory directly).
/// </summary>
public static class Init
{
    // ---- constants ---------------------------------------------------------------------------

    public static void Constant(Tensor tensor, float value)
    {
        CheckTarget("Init.Constant", tensor);
        tensor.Backend.Fill(tensor, value);
    }

    public static void Zeros(Tensor tensor) => Constant(tensor, 0f);

    public static void Ones(Tensor tensor) => Constant(tensor, 1f);

    // ---- plain distributions -----------------------------------------------------------------

    /// <summary>Uniform in [low, high).</summary>
    public static void Uniform(Tensor tensor, float low, float high, RandomSource rng)
    {
        CheckTarget("Init.Uniform", tensor);
        ArgumentNullException.ThrowIfNull(rng);
        if (!(high >= low)) throw new ArgumentException($"Init.Uniform: high ({high}) must be >= low ({low}).");
        var v = new float[tensor.Numel];
        rng.Uniform(v, low, high);
        Upload(tensor, v);
    }

    /// <summary>Normal with the given mean and standard deviation (Box-Muller).</summary>
    public static void Normal(Tensor tensor, float mean, float std, RandomSource rng)
    {
        CheckTarget("Init.Normal", tensor);
        ArgumentNullException.ThrowIfNull(rng);
        if (!(std >= 0)) throw new ArgumentException($"Init.Normal: std must be >= 0, got {std}.");
        var v = new float[tensor.Numel];
        rng.Normal(v, mean, std);
        Upload(tensor, v);
    }

    /// <summary>
    /// Normal(mean, std^2) truncated to [mean + a std, mean + b std] (defaults a = -2, b = 2: clipped at
    /// two standard deviations), sampled exactly by the inverse CDF: u uniform in (Phi(a), Phi(b)),
    /// value mean + std Phi^-1(u), clamped to the bounds against rounding. This is timm's
    /// <c>trunc_normal_tf_</c>. Note that timm's plain <c>trunc_normal_(std=0.02)</c> takes absolute
    /// bounds (-2, 2), i.e. 100 standard deviations (practically untruncated): pass
    /// a = -2 / std, b = 2 / std for that. The standard deviation of the result is std times
    /// about 0.880 for the default bounds (the truncated normal's).
    /// </summary>
    public static void TruncatedNormal(Tensor tensor, float std, RandomSource rng, float mean = 0f, float a = -2f, float b = 2f)
    {
        CheckTarget("Init.TruncatedNormal", tensor);
        ArgumentNullException.ThrowIfNull(rng);
        if (!(std >= 0)) throw new ArgumentException($"Init.TruncatedNormal: std must be >= 0, got {std}.");
        if (!(a < b)) throw new ArgumentException($"Init.TruncatedNormal: the lower bound a ({a}) must be below the upper bound b ({b}); both are in standard deviations from the mean.");
        double lo = NormalCdf(a), hi = NormalCdf(b);
        var stream = rng.Take(tensor.Numel);
        var v = new float[tensor.Numel];
        for (int i = 0; i < v.Length; i++)
        {
            // Centre of the 24-bit uniform's cell: never exactly 0 or 1, so the quantile is finite.
            double u = stream.Uniform(i) + 0.5 / 16777216.0;
            double p = Math.Clamp(lo + (hi - lo) * u, 1e-300, 1 - 1e-16);
            double z = Math.Clamp(NormalQuantile(p), a, b);
            v[i] = (float)(mean + std * z);
        }
        Upload(tensor, v);
    }

    // ---- scaled initializers -----------------------------------------------------------------

    /// <summary>
    /// torch.nn.init.kaiming_uniform_: U(-bound, bound) with bound = gain * sqrt(3 / fan) where fan
    /// is fan-in or fan-out (see <see cref="Fans"/>); <paramref name="a"/> is the leaky-ReLU slope.
    /// PyTorch's Linear and Conv default is a = sqrt(5), which gives bound = 1 / sqrt(fan_in).
    /// </summary>
    public static void KaimingUniform(Tensor tensor, RandomSource rng, float a = 0f, FanMode mode = FanMode.FanIn,
        Nonlinearity nonlinearity = Nonlinearity.LeakyRelu)
    {
        double std = KaimingStd("Init.KaimingUniform", tensor, a, mode, nonlinearity);
        float bound = (float)(Math.Sqrt(3.0) * std);
        Uniform(tensor, -bound, bound, rng);
    }

    /// <summary>torch.nn.init.kaiming_normal_: N(0, std^2) with std = gain / sqrt(fan).</summary>
    public static void KaimingNormal(Tensor tensor, RandomSource rng, float a = 0f, FanMode mode = FanMode.FanIn,
        Nonlinearity nonlinearity = Nonlinearity.LeakyRelu) =>
        Normal(tensor, 0f, (float)KaimingStd("Init.KaimingNormal", tensor, a, mode, nonlinearity), rng);

    /// <summary>torch.nn.init.xavier_uniform_: U(-bound, bound) with bound = gain * sqrt(6 / (fan_in + fan_out)).</summary>
    public static void XavierUniform(Tensor tensor, RandomSource rng, float gain = 1f)
    {
        CheckTarget("Init.XavierUniform", tensor);
        var (fanIn, fanOut) = Fans(tensor.Shape, "Init.XavierUniform");
        float bound = (float)(gain * Math.Sqrt(6.0 / (fanIn + fanOut)));
        Uniform(tensor, -bound, bound, rng);
    }

    /// <summary>torch.nn.init.xavier_normal_: N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out)).</summary>
    public static void XavierNormal(Tensor tensor, RandomSource rng, float gain = 1f)
    {
        CheckTarget("Init.XavierNormal", tensor);
        var (fanIn, fanOut) = Fans(tensor.Shape, "Init.XavierNormal");
        Normal(tensor, 0f, (float)(gain * Math.Sqrt(2.0 / (fanIn + fanOut))), rng);
    }

    /// <summary>torch.nn.init.calculate_gain; <paramref name="param"/> is the negative slope of LeakyRelu.</summary>
    public static double Gain(Nonlinearity nonlinearity, double param = 0.01) => nonlinearity switch
    {
        Nonlinearity.Linear or Nonlinearity.Sigmoid => 1.0,
        Nonlinearity.Relu => Math.Sqrt(2.0),
        Nonlinearity.LeakyRelu => Math.Sqrt(2.0 / (1 + param * param)),
        Nonlinearity.Tanh => 5.0 / 3.0,
        _ => throw new ArgumentOutOfRangeException(nameof(nonlinearity), nonlinearity, null),
    };

    /// <summary>
    /// PyTorch's fans of a weight of shape [out, in, k...]: fan_in = in * prod(k), fan_out = out * prod(k)
    /// (Linear [out, in]; Conv [out, in / groups, kT, kH, kW]). Needs at least 2 dimensions.
    /// </summary>
    public static (long FanIn, long FanOut) Fans(Shape shape, string op = "Init.Fans")
    {
        ArgumentNullException.ThrowIfNull(shape);
        if (shape.Rank < 2)
            throw new ShapeMismatchException($"{op}: fan in and fan out are not defined for a tensor of shape {shape} (fewer than 2 dimensions); use Uniform/Normal with explicit bounds.");
        long receptive = shape.Product(2, shape.Rank);
        long fanIn = shape[1] * receptive, fanOut = shape[0] * receptive;
        if (fanIn == 0 || fanOut == 0)
            throw new ShapeMismatchException($"{op}: shape {shape} has an empty dimension, so its fans are zero.");
        return (fanIn, fanOut);
    }

    static double KaimingStd(string op, Tensor tensor, float a, FanMode mode, Nonlinearity nonlinearity)
    {
        CheckTarget(op, tensor);
        var (fanIn, fanOut) = Fans(tensor.Shape, op);
        return Gain(nonlinearity, a) / Math.Sqrt(mode == FanMode.FanIn ? fanIn : fanOut);
    }

    // ---- helpers -----------------------------------------------------------------------------

    static void CheckTarget(string op, Tensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        if (tensor.IsDisposed) throw new ObjectDisposedException($"{op}: the tensor {tensor.Shape} was disposed.");
        if (tensor.DType != DType.Float32) throw new ArgumentException($"{op}: the tensor must be Float32, got {tensor.DType} {tensor.Shape}.");
    }

    static void Upload(Tensor tensor, float[] values) =>
        tensor.Backend.CopyFromHost(MemoryMarshal.AsBytes(values.AsSpan()), tensor);

    /// <summary>Phi(x) = erfc(-x / sqrt 2) / 2.</summary>
    internal static double NormalCdf(double x) => 0.5 * Erfc(-x / Math.Sqrt(2.0));

    /// <summary>erfc by the Chebyshev fit of Numerical Recipes (erfcc), relative error below 1.2e-7.</summary>
    static double Erfc(double x)
    {
        double z = Math.Abs(x);
        double t = 1.0 / (1.0 + 0.5 * z);
        double r = t * Math.Exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
                   t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 +
                   t * (-0.82215223 + t * 0.17087277)))))))));
        return x >= 0 ? r : 2.0 - r;
    }

    /// <summary>Phi^-1(p) for p in (0, 1): P. J. Acklam's rational approximation (relative error below 1.2e-9).</summary>
    internal static double NormalQuantile(double p)
    {
        const double pLow = 0.02425;
        if (p < pLow) return Tail(Math.Sqrt(-2 * Math.Log(p)));
        if (p > 1 - pLow) return -Tail(Math.Sqrt(-2 * Math.Log(1 - p)));
        double q = p - 0.5, r = q * q;
        return (((((-3.969683028665376e+01 * r + 2.209460984245205e+02) * r - 2.759285104469687e+02) * r + 1.383577518672690e+02) * r
                 - 3.066479806614716e+01) * r + 2.506628277459239e+00) * q /
               (((((-5.447609879822406e+01 * r + 1.615858368580409e+02) * r - 1.556989798598866e+02) * r + 6.680131188771972e+01) * r
                 - 1.328068155288572e+01) * r + 1);

        static double Tail(double q) =>
            (((((-7.784894002430293e-03 * q - 3.223964580411365e-01) * q - 2.400758277161838e+00) * q - 2.549732539343734e+00) * q
              + 4.374664141464968e+00) * q + 2.938163982698783e+00) /
            ((((7.784695709041462e-03 * q + 3.224671290700398e-01) * q + 2.445134137142996e+00) * q + 3.754408661907416e+00) * q + 1);
    }
}
