using Sbp.Rng;
using Sbp.Tensors;

namespace Sbp.Nn;

/// <summary>
/// The shared part of <see cref="Conv2d"/> and <see cref="Conv3d"/>: weight [out, in / groups, k...]
/// and bias [out] (parameters "weight", "bias"), initialized as PyTorch does: weight
/// kaiming_uniform(a = sqrt 5), i.e. U(+-1/sqrt(fan_in)) with fan_in = in / groups * prod(k), and bias
/// U(+-1/sqrt(fan_in)), drawn from the source in that order.
/// </summary>
public abstract class ConvNd : Module
{
    private protected ConvNd(string layer, int axes, int inChannels, int outChannels, int[] kernelSize, RandomSource rng,
        int[]? stride, int[]? padding, int[]? dilation, int groups, bool bias, Device? device) : base(device)
    {
        ArgumentNullException.ThrowIfNull(rng);
        ArgumentNullException.ThrowIfNull(kernelSize);
        string call = $"{layer}({inChannels}, {outChannels}, [{string.Join(", ", kernelSize)}])";
        if (inChannels < 1 || outChannels < 1)
            throw new ArgumentOutOfRangeException(nameof(inChannels), $"{call}: channel counts must be >= 1.");
        if (groups < 1 || inChannels % groups != 0 || outChannels % groups != 0)
            throw new ArgumentException($"{call}: groups = {groups} must be >= 1 and divide both the input ({inChannels}) and output ({outChannels}) channel counts.");
        var k = Expand(call, "kernel size", kernelSize, axes);
        if (k.Any(v => v < 1)) throw new ArgumentException($"{call}: every kernel size must be >= 1.");
        Stride = stride is null ? null : Expand(call, "stride", stride, axes);
        Padding = padding is null ? null : Expand(call, "padding", padding, axes);
        Dilation = dilation is null ? null : Expand(call, "dilation", dilation, axes);
        InChannels = inChannels;
        OutChannels = outChannels;
        KernelSize = k;
        Groups = groups;
        Init.KaimingUniform(RegisterParameter("weight", NewState([outChannels, inChannels / groups, .. k])), rng, MathF.Sqrt(5f));
        if (bias)
        {
            float bound = 1f / MathF.Sqrt(inChannels / groups * k.Aggregate(1, (p, v) => p * v));
            Init.Uniform(RegisterParameter("bias", NewState(outChannels)), -bound, bound, rng);
        }
    }

    static int[] Expand(string call, string name, int[] values, int axes) =>
        values.Length == axes ? (int[])values.Clone()
        : values.Length == 1 ? Enumerable.Repeat(values[0], axes).ToArray()
        : throw new ArgumentException($"{call}: {name} [{string.Join(", ", values)}] must have {axes} values or one for every axis.");

    public int InChannels { get; }
    public int OutChannels { get; }
    public int[] KernelSize { get; }
    /// <summary>Per axis (null: the op's default, 1).</summary>
    public int[]? Stride { get; }
    /// <summary>Per axis (null: the op's default, 0).</summary>
    public int[]? Padding { get; }
    /// <summary>Per axis (null: the op's default, 1).</summary>
    public int[]? Dilation { get; }
    public int Groups { get; }
    /// <summary>[out, in / groups, k...] (read through the registry, so <see cref="Module.WithParameters"/> can substitute it).</summary>
    public Tensor Weight => Parameter("weight");
    /// <summary>[out], or null without bias.</summary>
    public Tensor? Bias => FindParameter("bias");
}

/// <summary>
/// 2-D convolution (<see cref="Ops.Conv2d"/>) on x [N, C, H, W]: weight [out, in / groups, kH, kW].
/// kernelSize, stride, padding and dilation are (h, w) or one value for both.
/// </summary>
public sealed class Conv2d : ConvNd
{
    public Conv2d(int inChannels, int outChannels, int[] kernelSize, RandomSource rng, int[]? stride = null, int[]? padding = null,
        int[]? dilation = null, int groups = 1, bool bias = true, Device? device = null)
        : base("Conv2d", 2, inChannels, outChannels, kernelSize, rng, stride, padding, dilation, groups, bias, device) { }

    /// <summary>A square kernel.</summary>
    public Conv2d(int inChannels, int outChannels, int kernelSize, RandomSource rng, int[]? stride = null, int[]? padding = null,
        int[]? dilation = null, int groups = 1, bool bias = true, Device? device = null)
        : this(inChannels, outChannels, [kernelSize], rng, stride, padding, dilation, groups, bias, device) { }

    public override Tensor Forward(Tensor x) => Ops.Conv2d(x, Weight, Bias, Stride, Padding, Dilation, Groups);
}

/// <summary>
/// 3-D convolution (<see cref="Ops.Conv3d"/>) on x [N, C, T, H, W]: weight [out, in / groups, kT, kH, kW].
/// kernelSize, stride, padding and dilation are (t, h, w) or one value for all three.
/// </summary>
public sealed class Conv3d : ConvNd
{
    public Conv3d(int inChannels, int outChannels, int[] kernelSize, RandomSource rng, int[]? stride = null, int[]? padding = null,
        int[]? dilation = null, int groups = 1, bool bias = true, Device? device = null)
        : base("Conv3d", 3, inChannels, outChannels, kernelSize, rng, stride, padding, dilation, groups, bias, device) { }

    /// <summary>A cubic kernel.</summary>
    public Conv3d(int inChannels, int outChannels, int kernelSize, RandomSource rng, int[]? stride = null, int[]? padding = null,
        int[]? dilation = null, int groups = 1, bool bias = true, Device? device = null)
        : this(inChannels, outChannels, [kernelSize], rng, stride, padding, dilation, groups, bias, device) { }

    public override Tensor Forward(Tensor x) => Ops.Conv3d(x, Weight, Bias, Stride, Padding, Dilation, Groups);
}
