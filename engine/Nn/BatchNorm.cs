using Sbp.Tensors;

namespace Sbp.Nn;

/// <summary>
/// Batch normalization (<see cref="Ops.BatchNorm"/>) over the channel axis 1 of [N, C, ...] (torch.nn.BatchNorm2d/3d):
/// weight (ones) and bias (zeros) of [C] when affine, buffers "running_mean" (zeros) and
/// "running_var" (ones) of [C]. Three behaviours:
/// <list type="bullet">
/// <item>training (<see cref="Module.Training"/>, not <see cref="Frozen"/>): normalizes with the
/// batch's mean and biased variance and updates the running statistics,
/// running = (1 - momentum) running + momentum batch (the unbiased variance for running_var);</item>
/// <item>eval: normalizes with the running statistics, which stay as they are;</item>
/// <item><see cref="Frozen"/> (in either mode): like eval (running statistics, kept fixed) while the
/// affine weight and bias still train — the per-frame ResNet setting of video models.</item>
/// </list>
/// PyTorch's num_batches_tracked buffer is not kept (only used for momentum = None); load
/// PyTorch state dicts with strict: false or drop those keys.
/// </summary>
public abstract class BatchNorm : Module
{
    private protected BatchNorm(string layer, int rank, int channels, float momentum, float eps, bool affine, Device? device) : base(device)
    {
        if (channels < 1) throw new ArgumentOutOfRangeException(nameof(channels), $"{layer}({channels}): the channel count must be >= 1.");
        if (!(momentum >= 0f && momentum <= 1f)) throw new ArgumentOutOfRangeException(nameof(momentum), $"{layer}: momentum must be in [0, 1], got {momentum}.");
        if (!(eps > 0f)) throw new ArgumentOutOfRangeException(nameof(eps), $"{layer}: eps must be > 0, got {eps}.");
        Layer = layer;
        InputRank = rank;
        Channels = channels;
        Momentum = momentum;
        Eps = eps;
        if (affine)
        {
            Init.Ones(RegisterParameter("weight", NewState(channels)));
            Init.Zeros(RegisterParameter("bias", NewState(channels)));
        }
        Init.Zeros(RegisterBuffer("running_mean", NewState(channels)));
        Init.Ones(RegisterBuffer("running_var", NewState(channels)));
    }

    string Layer { get; }
    /// <summary>4 for BatchNorm2d ([N, C, H, W]), 5 for BatchNorm3d ([N, C, T, H, W]).</summary>
    public int InputRank { get; }
    public int Channels { get; }
    public float Momentum { get; }
    public float Eps { get; }

    /// <summary>Use and keep the running statistics even in training mode; the affine parameters still train.</summary>
    public bool Frozen { get; set; }

    /// <summary>[C], or null without affine.</summary>
    public Tensor? Weight => FindParameter("weight");
    /// <summary>[C], or null without affine.</summary>
    public Tensor? Bias => FindParameter("bias");
    public Tensor RunningMean => Buffer("running_mean");
    public Tensor RunningVar => Buffer("running_var");

    /// <summary>What the next forward does: <see cref="BatchNormMode.Frozen"/> when <see cref="Frozen"/>, else Train or Eval by <see cref="Module.Training"/>.</summary>
    public BatchNormMode Mode => Frozen ? BatchNormMode.Frozen : Training ? BatchNormMode.Train : BatchNormMode.Eval;

    public override Tensor Forward(Tensor x)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (x.Rank != InputRank || x.Shape[1] != Channels)
            throw new ShapeMismatchException($"{Layer}({Channels}): the input must be [N, {Channels}{string.Concat(Enumerable.Repeat(", ...", InputRank - 2))}] (rank {InputRank}), got {x.Shape}.");
        return Ops.BatchNorm(x, Weight, Bias, RunningMean, RunningVar, Mode, Momentum, Eps);
    }

    public override string ToString() => $"{Layer}({Channels}, momentum: {Momentum}, eps: {Eps}{(Frozen ? ", frozen" : "")})";
}

/// <summary>Batch normalization of [N, C, H, W] (torch.nn.BatchNorm2d). See <see cref="BatchNorm"/>.</summary>
public sealed class BatchNorm2d(int channels, float momentum = 0.1f, float eps = 1e-5f, bool affine = true, Device? device = null)
    : BatchNorm("BatchNorm2d", 4, channels, momentum, eps, affine, device);

/// <summary>Batch normalization of [N, C, T, H, W] (torch.nn.BatchNorm3d). See <see cref="BatchNorm"/>.</summary>
public sealed class BatchNorm3d(int channels, float momentum = 0.1f, float eps = 1e-5f, bool affine = true, Device? device = null)
    : BatchNorm("BatchNorm3d", 5, channels, momentum, eps, affine, device);
