using Sbp.Nn;
using Sbp.Rng;
using Sbp.Stochastic;
using Sbp.Tensors;

namespace Sbp.Models.Architectures;

/// <summary>
/// torchvision's R(2+1)D (VideoResNet) on clips [B, 3, T, H, W]: "stem", "layer1".."layer4" of
/// <see cref="R2Plus1dBlock"/> (strides 1, 2, 2, 2 on every axis), the mean over (T, H, W), "fc". Every
/// state-dict name is torchvision's, so its checkpoints load as they are (<see cref="Pretrained.OfficialWeights"/>).
/// <para>No SBP regions: batch norm in training mode mixes frames, and the temporal convolutions sit inside every
/// block (the engine's own (2+1)-D design, <see cref="R21dNet"/>, keeps them outside its per-frame regions).</para>
/// </summary>
public sealed class VideoResNet : VideoModel
{
    readonly List<Sequential> _layers = [];

    public VideoResNet(VideoResNetConfig config, RandomSource rng, Device? device = null) : base(device)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(rng);
        config.Validate();
        Config = config;
        Stem = RegisterModule("stem", R2Plus1dBlock.Stem(config.SampleShape[0], config.StemMid, config.StemWidth, rng, device));
        int inPlanes = config.StemWidth;
        for (int s = 0; s < 4; s++)
        {
            var layer = RegisterModule($"layer{s + 1}", new Sequential(device));
            for (int j = 0; j < config.Blocks[s]; j++)
            {
                layer.Append(new R2Plus1dBlock(inPlanes, config.Widths[s], j == 0 && s > 0 ? 2 : 1, rng, device));
                inPlanes = config.Widths[s];
            }
            _layers.Add(layer);
        }
        Fc = RegisterModule("fc", new Linear(inPlanes, config.NumClasses, rng, device: device));
        // torchvision's init: convs kaiming_normal(fan_out, relu), batch norm 1 and 0, fc normal(0, 0.01) and 0.
        foreach (var (_, m) in NamedModules())
            if (m is Conv3d conv) Init.KaimingNormal(conv.Weight, rng, 0f, FanMode.FanOut, Nonlinearity.Relu);
        Init.Normal(Fc.Weight, 0f, 0.01f, rng);
        Init.Zeros(Fc.Bias!);
    }

    public VideoResNetConfig Config { get; }
    public override string ConfigName => Config.Name;
    public override int[] SampleShape => (int[])Config.SampleShape.Clone();
    public override int NumClasses => Config.NumClasses;
    /// <summary>"stem": torchvision's R2Plus1dStem (<see cref="R2Plus1dBlock.Stem"/>).</summary>
    public Sequential Stem { get; }
    /// <summary>"layer1".."layer4".</summary>
    public IReadOnlyList<Sequential> Layers => _layers;
    public Linear Fc { get; }

    public override string? SbpProblem(SbpPolicy policy) =>
        $"VideoResNet '{Config.Name}' (torchvision's R(2+1)D) has no SBP regions: its batch norm mixes frames in training and every block " +
        "convolves over time. Train it with full backprop, or use r21d-micro for SBP.";

    public override Tensor Forward(Tensor x, SbpPolicy? sbp, long step)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (x.Rank != 5 || x.Shape[1] != Config.SampleShape[0])
            throw new ShapeMismatchException($"VideoResNet '{Config.Name}': the input must be clips [B, {Config.SampleShape[0]}, T, H, W], got {x.Shape}.");
        if (sbp is not null) throw new ArgumentException(SbpProblem(sbp));
        using var scope = TensorScope.Begin();
        var h = Stem.Forward(x);
        foreach (var layer in _layers) h = h.Consume(layer.Forward);
        return scope.Keep(Fc.Forward(h.Consume(z => Ops.Mean(z, [2, 3, 4]))));
    }

    public override ModelSummary Summary() =>
        ModelSummary.Of(Config.Name, [("stem", Stem), .. _layers.Select((m, s) => ($"layer{s + 1}", (Module?)m)), ("fc", Fc)]);
}
