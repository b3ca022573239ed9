using Sbp.Nn;
using Sbp.Rng;
using Sbp.Stochastic;
using Sbp.Tensors;

namespace Sbp.Models.Architectures;

/// <summary>
/// (2+1)-D convolutional network over clips [B, 3, T, H, W] -> logits [B, K]. A 3 x 3 x 3 stem
/// (stride 1 x 2 x 2) sees motion at full resolution; then stage s: a spatial
/// block conv(1x3x3, stride 1x2x2) - ReLU - conv(1x3x3) - ReLU, which works on each frame alone and
/// is an SBP region over time (dim 2, block-output placement), then h + ReLU(conv(3x1x1)(h)), the
/// temporal mixing that tells motion, trained with the full gradient. Mean over (T, H, W), linear head.
/// </summary>
public sealed class R21dNet : VideoModel
{
    readonly List<(Conv3d A, Conv3d B)> _spatial = [];
    readonly List<Conv3d> _temporal = [];
    readonly List<Sequential> _stages = [];

    public R21dNet(R21dConfig config, RandomSource rng, Device? device = null) : base(device)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(rng);
        config.Validate();
        Config = config;
        // The stem sees raw motion: a full 3 x 3 x 3 convolution at full resolution (outside SBP, it mixes frames).
        Stem = RegisterModule("stem", new Conv3d(config.SampleShape[0], config.StemWidth, [3, 3, 3], rng, stride: [1, 2, 2], padding: [1, 1, 1], device: device));
        Init.KaimingUniform(Stem.Weight, rng, nonlinearity: Nonlinearity.Relu);
        Init.Zeros(Stem.Bias!);
        int cin = config.StemWidth;
        for (int s = 0; s < config.Widths.Length; s++)
        {
            int w = config.Widths[s];
            // stage{s}.0, .1: the spatial convolutions; stage{s}.2: the temporal one.
            var stage = RegisterModule($"stage{s}", new Sequential(device));
            var a = new Conv3d(cin, w, [1, 3, 3], rng, stride: [1, 2, 2], padding: [0, 1, 1], device: device);
            var b = new Conv3d(w, w, [1, 3, 3], rng, padding: [0, 1, 1], device: device);
            var t = new Conv3d(w, w, [3, 1, 1], rng, padding: [1, 0, 0], device: device);
            // Kaiming for ReLU keeps the signal's scale through the nine convolutions (PyTorch's default
            // a = sqrt(5) shrinks it about 3x per layer and the network starts out constant).
            foreach (var conv in new[] { a, b, t })
            {
                Init.KaimingUniform(conv.Weight, rng, nonlinearity: Nonlinearity.Relu);
                if (conv.Bias is { } bias) Init.Zeros(bias);
                stage.Append(conv);
            }
            _stages.Add(stage);
            _spatial.Add((a, b));
            _temporal.Add(t);
            cin = w;
        }
        Head = RegisterModule("head", new Linear(cin, config.NumClasses, rng, device: device));
    }

    public R21dConfig Config { get; }
    public override string ConfigName => Config.Name;
    public override int[] SampleShape => (int[])Config.SampleShape.Clone();
    public override int NumClasses => Config.NumClasses;
    public Conv3d Stem { get; }
    public Linear Head { get; }

    public override Tensor Forward(Tensor x, SbpPolicy? sbp, long step)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (x.Rank != 5 || x.Shape[1] != Config.SampleShape[0])
            throw new ShapeMismatchException($"R21dNet '{Config.Name}': the input must be clips [B, {Config.SampleShape[0]}, T, H, W], got {x.Shape}.");
        if (sbp is not null && sbp.MaskPolicy.Kind == MaskKind.Grid)
            throw new ArgumentException($"R21dNet '{Config.Name}': SBP masks are over frames (one axis); use MaskKind.Strided or MaskKind.Random.");
        // Each activation is freed once the next op has read it (Consume; the tape keeps what backward
        // needs): under SBP the regions keep compact copies, so full-size forward values must not linger.
        using var scope = TensorScope.Begin();
        var h = Stem.Forward(x).Consume(Ops.Relu);
        for (int s = 0; s < _spatial.Count; s++)
        {
            var (a, b) = _spatial[s];
            var mask = sbp?.Masks.Next(step, s, h.Shape[2]);
            h = h.Consume(z => SbpRegions.Run($"stage{s}.spatial", z, 2, mask, sbp,
                w => a.Forward(w).Consume(Ops.Relu).Consume(b.Forward).Consume(Ops.Relu)));
            var t = _temporal[s].Forward(h).Consume(Ops.Relu);
            h = h.Consume(z => Ops.Add(z, t));
            t.Dispose();
        }
        return scope.Keep(Head.Forward(h.Consume(z => Ops.Mean(z, [2, 3, 4]))));
    }

    public override ModelSummary Summary() =>
        ModelSummary.Of(Config.Name, [("stem", Stem), .. _stages.Select((m, s) => ($"stage{s}", (Module?)m)), ("head", Head)]);
}
