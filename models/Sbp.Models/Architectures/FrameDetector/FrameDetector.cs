using Sbp.Nn;
using Sbp.Rng;
using Sbp.Stochastic;
using Sbp.Tensors;

namespace Sbp.Models.Architectures;

/// <summary>
/// Per-frame action detector on long clips x [B, T, C, H, W]: a 2-D ResNet ("backbone": "stem",
/// "layer1".."layer4") on every frame, global average pooling per frame, and a
/// <see cref="TemporalHead"/> ("head"); logits [B, T, classes] (one class per frame).
/// <para>Batch norm is frozen (running statistics, affine trained) as in the paper's end-to-end
/// LSTR setting, which also makes every backbone op position-wise along frames. Trained from scratch,
/// the statistics must first be set from data (<see cref="CalibrateBatchNorm"/>; the trainer does it on
/// one batch): at their initial values (mean 0, var 1) frozen batch norm is the identity, and the
/// backbone (convs without bias, ReLU) has no centring or threshold, so its pooled features measure
/// the frame's overall brightness and hardly the object, and the head learns only the label prior.</para>
/// <para>SBP: backbone stage s (0 = stem + layer1, 1..3 = layer2..4; the first
/// <see cref="FrameDetectorConfig.SbpStages"/>) is a region over frames: its input [B, T, C, H, W]
/// with dimension 1, the body runs the stage on [B * T, C, H, W]. Mask layer index = stage.</para>
/// </summary>
public sealed class FrameDetector : VideoModel
{
    readonly Module[][] _stages;

    public FrameDetector(FrameDetectorConfig config, RandomSource rng, Device? device = null) : base(device)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(rng);
        config.Validate();
        Config = config;
        Backbone = RegisterModule("backbone", new ResNetBackbone(config, rng, device));
        Head = RegisterModule("head", new TemporalHead(config.StageOut(3), config.HeadDim, config.HeadDepth, config.HeadHeads, config.NumClasses,
            config.CausalHead, rng, device));
        Inits.TransformerDefaults(Head, rng);
        // The projection takes pooled backbone features of order 1 (calibrated batch norm) and must give
        // tokens of order 1 like the sinusoidal encoding added to them: LeCun normal, not the 0.02 of the
        // transformer layers (the encoding would drown features of size ~0.05 and keep the head at the prior).
        Init.TruncatedNormal(Head.Proj.Weight, (float)(1 / Math.Sqrt(Head.Proj.InFeatures)), rng);
        // One SBP region per residual block (and the stem): a region records in full until it closes, so
        // small regions keep that transient small (a whole stage at full resolution set the peak).
        static IEnumerable<Module> Blocks(Sequential layer) => layer.NamedChildren().Select(c => c.Module);
        _stages = [[Backbone.Stem, .. Blocks(Backbone.Layers[0])], [.. Blocks(Backbone.Layers[1])], [.. Blocks(Backbone.Layers[2])], [.. Blocks(Backbone.Layers[3])]];
        if (config.FreezeBatchNorm)
            foreach (var (_, m) in NamedModules())
                if (m is BatchNorm bn) bn.Frozen = true;
    }

    public FrameDetectorConfig Config { get; }
    public override string ConfigName => Config.Name;
    public override int[] SampleShape => (int[])Config.SampleShape.Clone();

    /// <summary>A 2-D backbone per frame: frames first.</summary>
    public override bool FramesFirst => true;

    public override bool PerFrameLabels => true;

    /// <summary>Frozen batch norm trained from scratch is the identity until set from data: <see cref="CalibrateBatchNorm"/>.</summary>
    public override bool NeedsCalibration => true;

    public override void Calibrate(Tensor inputs) => CalibrateBatchNorm(inputs);
    public override int NumClasses => Config.NumClasses;
    public ResNetBackbone Backbone { get; }
    public TemporalHead Head { get; }

    /// <summary>stem, layer1..layer4 of a torchvision ResNet (no fc).</summary>
    public sealed class ResNetBackbone : Module
    {
        internal ResNetBackbone(FrameDetectorConfig c, RandomSource rng, Device? device) : base(device)
        {
            Stem = RegisterModule("stem", new ResNetStem(c.SampleShape[1], c.StemWidth, c.StemKernel, c.StemStride, c.StemPool, rng, device));
            int inCh = c.StemWidth;
            var layers = new Sequential[4];
            for (int s = 0; s < 4; s++)
            {
                var layer = new Sequential(device);
                for (int j = 0; j < c.Blocks[s]; j++)
                {
                    int stride = j == 0 && s > 0 ? 2 : 1;
                    layer.Append(c.Bottleneck ? new Bottleneck2d(inCh, c.StageInner(s), stride, rng, device) : new BasicBlock2d(inCh, c.Widths[s], stride, rng, device));
                    inCh = c.StageOut(s);
                }
                layers[s] = RegisterModule($"layer{s + 1}", layer);
            }
            Layers = layers;
            // torchvision's ResNet init: convs kaiming_normal(fan_out, relu); batch norm 1 and 0 (their defaults).
            foreach (var (_, m) in NamedModules())
                if (m is Conv2d conv) Init.KaimingNormal(conv.Weight, rng, 0f, FanMode.FanOut, Nonlinearity.Relu);
        }

        public ResNetStem Stem { get; }
        public IReadOnlyList<Sequential> Layers { get; }

        public override Tensor Forward(Tensor x)
        {
            using var scope = TensorScope.Begin();
            var h = Stem.Forward(x);
            foreach (var layer in Layers) h = layer.Forward(h);
            return scope.Keep(h);
        }
    }

    public override Tensor Forward(Tensor x, SbpPolicy? sbp, long step)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (x.Rank != 5 || x.Shape[2] != Config.SampleShape[1])
            throw new ShapeMismatchException($"FrameDetector '{Config.Name}': the input must be frames [B, T, {Config.SampleShape[1]}, H, W], got {x.Shape}.");
        if (sbp is not null && sbp.Placement != SbpPlacement.BlockOutput)
            throw new ArgumentException($"FrameDetector '{Config.Name}': SBP regions sit on backbone stage outputs (block-output placement); the policy asks for {sbp.Placement}.");
        if (sbp is not null && Training && NamedModules().Any(m => m.Module is BatchNorm { Frozen: false }))
            throw new InvalidOperationException($"FrameDetector '{Config.Name}': SBP over frames needs frozen batch norm (training-mode statistics mix frames); build with FreezeBatchNorm or call Eval().");
        if (sbp is not null && sbp.MaskPolicy.Kind == MaskKind.Grid)
            throw new ArgumentException($"FrameDetector '{Config.Name}': SBP masks are over frames (one axis); grid masks need 2 or 3 axes. Use MaskKind.Strided or MaskKind.Random.");
        using var scope = TensorScope.Begin();
        var h = x;
        for (int s = 0; s < _stages.Length; s++)
        {
            bool region = sbp is not null && sbp.Covers(s < Config.SbpStages);
            var mask = region ? sbp!.Masks.Next(step, s, x.Shape[1]) : null;
            for (int j = 0; j < _stages[s].Length; j++)
            {
                var module = _stages[s][j];
                var next = SbpRegions.Run($"backbone.stage{s}.{j}", h, 1, mask, region ? sbp : null, z => PerFrame(z, [module]));
                if (!ReferenceEquals(h, x)) h.Dispose();
                h = next;
            }
        }
        var features = Ops.Mean(h, [3, 4]);                                               // [B, T, F]
        return scope.Keep(Head.Forward(features));
    }

    /// <summary>The module of SBP region "backbone.stage{s}.{j}" (the stem or a residual block).</summary>
    public Module RegionModule(int stage, int index) => _stages[stage][index];

    /// <summary>The modules on every frame: [B, T, C, H, W] -> [B * T, C, H, W] -> modules -> [B, T, C', H', W'].</summary>
    static Tensor PerFrame(Tensor z, Module[] modules)
    {
        int b = z.Shape[0], t = z.Shape[1];
        using var scope = TensorScope.Begin();
        var h = Ops.Reshape(z, b * t, z.Shape[2], z.Shape[3], z.Shape[4]);
        foreach (var m in modules) h = m.Forward(h);
        return scope.Keep(Ops.Reshape(h, b, t, h.Shape[1], h.Shape[2], h.Shape[3]));
    }

    /// <summary>
    /// Sets every batch norm's running statistics to the statistics of its input on frames
    /// <paramref name="x"/> [B, T, C, H, W] (each layer after the ones before it are set), so the
    /// frozen batch norm normalizes as it would after pretraining instead of being the identity.
    /// Frozen layers stay frozen; the affine parameters are not changed.
    /// </summary>
    public void CalibrateBatchNorm(Tensor x)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (x.Rank != 5 || x.Shape[2] != Config.SampleShape[1])
            throw new ShapeMismatchException($"FrameDetector '{Config.Name}': calibration needs frames [B, T, {Config.SampleShape[1]}, H, W], got {x.Shape}.");
        var norms = NamedModules().Select(m => m.Module).OfType<BatchNorm>().ToList();
        var frozen = norms.Select(n => n.Frozen).ToList();
        var saved = norms.Select(n => (Mean: n.RunningMean.ToArray(), Var: n.RunningVar.ToArray())).ToList();
        bool training = Training, done = false;
        foreach (var n in norms)
        {
            if (!(n.Momentum > 0f))
                throw new InvalidOperationException($"FrameDetector '{Config.Name}': calibration reads batch statistics through the running averages and needs momentum > 0, got {n.Momentum}.");
            // from zero, one training-mode update leaves momentum x (batch statistic)
            Init.Zeros(n.RunningMean);
            Init.Zeros(n.RunningVar);
            n.Frozen = false;
        }
        Train();
        try
        {
            using var noGrad = Autograd.Tape.NoGrad();
            using var scope = TensorScope.Begin();
            Backbone.Forward(Ops.Reshape(x, x.Shape[0] * x.Shape[1], x.Shape[2], x.Shape[3], x.Shape[4]));
            done = true;
        }
        finally
        {
            for (int i = 0; i < norms.Count; i++)
            {
                var n = norms[i];
                n.Frozen = frozen[i];
                float inv = 1f / n.Momentum;
                // on a failure the statistics go back to what they were
                Upload(n.RunningMean, done ? n.RunningMean.ToArray().Select(v => v * inv).ToArray() : saved[i].Mean);
                Upload(n.RunningVar, done ? n.RunningVar.ToArray().Select(v => float.IsFinite(v) ? Math.Max(v * inv, n.Eps) : 1f).ToArray() : saved[i].Var);
            }
            if (!training) Eval();
        }
    }

    static void Upload(Tensor t, float[] values) => t.Backend.CopyFromHost(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()), t);

    public override ModelSummary Summary() => ModelSummary.Of(Config.Name,
        ("backbone.stem", Backbone.Stem), ("backbone.layer1", Backbone.Layers[0]), ("backbone.layer2", Backbone.Layers[1]),
        ("backbone.layer3", Backbone.Layers[2]), ("backbone.layer4", Backbone.Layers[3]), ("head", Head));

    /// <summary>Per-frame cross-entropy of logits [B, T, K] against Int32 targets [B, T] (mean over frames).</summary>
    public static Tensor FrameLoss(Tensor logits, Tensor targets)
    {
        ArgumentNullException.ThrowIfNull(logits);
        ArgumentNullException.ThrowIfNull(targets);
        using var scope = TensorScope.Begin();
        int rows = logits.Shape[0] * logits.Shape[1];
        var flat = Ops.Reshape(logits, rows, logits.Shape[2]);
        var t = Ops.Reshape(targets, rows);
        return scope.Keep(Ops.CrossEntropy(flat, t));
    }
}
