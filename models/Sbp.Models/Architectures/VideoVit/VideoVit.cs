using Sbp.Nn;
using Sbp.Rng;
using Sbp.Stochastic;
using Sbp.Tensors;

namespace Sbp.Models.Architectures;

/// <summary>
/// Video ViT with joint space-time tokens on clips x [B, C, T, H, W]: tubelet embedding
/// ("patch_embed.proj", a Conv3d with kernel = stride = tubelet) to T'H'W' tokens, a CLS token
/// ("cls_token") in front, a learned position embedding ("pos_embed" [1, 1 + N, C]), pre-norm
/// blocks ("blocks.i"), "norm", and a linear "head" on the CLS token. Logits [B, classes].
/// VideoMAE's variant (<see cref="VitPositions.Sinusoidal"/>, <see cref="VitPooling.MeanFcNorm"/>) has no
/// CLS token, adds the fixed sinusoid table, and classifies the mean token through "fc_norm".
/// <para>SBP (NeurIPS 2022): blocks selected by <see cref="VideoVitConfig.UsesSbp"/> run their
/// attention core and MLP branch as regions over the 1 + N tokens; the mask is drawn over the token
/// grid (grid masks over (T', H', W'); strided and random over N) and a CLS token is pinned as kept.</para>
/// </summary>
public sealed class VideoVit : VideoModel
{
    readonly List<VitBlock> _blocks = [];

    public VideoVit(VideoVitConfig config, RandomSource rng, Device? device = null) : base(device)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(rng);
        config.Validate();
        Config = config;
        var t = config.Tubelet;
        PatchEmbed = RegisterModule("patch_embed", new TubeletEmbed(config.SampleShape[0], config.EmbedDim, t, rng, device));
        int cls = config.HasClsToken ? 1 : 0;
        if (config.HasClsToken) Init.TruncatedNormal(RegisterParameter("cls_token", NewState(1, 1, config.EmbedDim)), 0.02f, rng);
        if (config.Positions == VitPositions.Learned)
            Init.TruncatedNormal(RegisterParameter("pos_embed", NewState(1, cls + config.Tokens, config.EmbedDim)), 0.02f, rng);
        else
            _sinusoid = SinusoidalPositions.Table(config.Tokens, config.EmbedDim);
        var rates = Inits.DropPathRates(config.DropPath, config.Depth);
        var blocks = RegisterModule("blocks", new Sequential(device));
        for (int i = 0; i < config.Depth; i++)
        {
            var block = new VitBlock(config.EmbedDim, config.Heads, config.MlpRatio, config.QkvBias, rates[i], rng, device: device,
                layerNormEps: config.LayerNormEps);
            blocks.Append(block);
            _blocks.Add(block);
        }
        // The sequence norm of a CLS classifier, or the pooled-token norm of VideoMAE's mean pooling (HF builds
        // fc_norm without its config's eps: PyTorch's default 1e-5).
        Norm = config.HasClsToken
            ? RegisterModule("norm", new LayerNorm(config.EmbedDim, config.LayerNormEps, device: device))
            : RegisterModule("fc_norm", new LayerNorm(config.EmbedDim, device: device));
        Head = RegisterModule("head", new Linear(config.EmbedDim, config.NumClasses, rng, device: device));
        Inits.TransformerDefaults(this, rng);
    }

    public VideoVitConfig Config { get; }
    public override string ConfigName => Config.Name;
    public override int[] SampleShape => (int[])Config.SampleShape.Clone();
    public override int NumClasses => Config.NumClasses;

    /// <summary>The NeurIPS study's placement: the attention core and the MLP branch.</summary>
    public override SbpPlacement SbpPlacement => SbpPlacement.BranchOutput;

    /// <summary>Grid masks over the token grid where the keep ratio allows them (1/s or 1 - 1/s), else random.</summary>
    public override MaskKind DefaultMaskKind(double keep) => TokenMaskKind(keep);

    /// <summary>The ViT's default mask kind at a keep ratio (also before a model exists, from its config).</summary>
    public static MaskKind TokenMaskKind(double keep) => KeepMaskGenerator.Supports(MaskKind.Grid, keep) ? MaskKind.Grid : MaskKind.Random;
    public TubeletEmbed PatchEmbed { get; }
    /// <summary>"cls_token" [1, 1, C], or null without one (<see cref="VitPooling.MeanFcNorm"/>).</summary>
    public Tensor? ClsToken => Config.HasClsToken ? Parameter("cls_token") : null;
    /// <summary>The learned "pos_embed", or null with fixed sinusoidal positions.</summary>
    public Tensor? PosEmbed => Config.Positions == VitPositions.Learned ? Parameter("pos_embed") : null;
    public IReadOnlyList<VitBlock> Blocks => _blocks;
    /// <summary>"norm" on the sequence (CLS pooling) or "fc_norm" on the pooled token (mean pooling).</summary>
    public LayerNorm Norm { get; }

    public Linear Head { get; }

    /// <summary>The fixed position table (VideoMAE) or null (learned positions).</summary>
    readonly float[]? _sinusoid;

    /// <summary>The Conv3d tubelet embedding ("proj") to tokens [B, T'H'W', C], ordered (t, h, w).</summary>
    public sealed class TubeletEmbed : Module
    {
        internal TubeletEmbed(int inChannels, int dim, (int T, int H, int W) tubelet, RandomSource rng, Device? device) : base(device) =>
            Proj = RegisterModule("proj", new Conv3d(inChannels, dim, [tubelet.T, tubelet.H, tubelet.W], rng, stride: [tubelet.T, tubelet.H, tubelet.W], device: device));

        public Conv3d Proj { get; }

        public override Tensor Forward(Tensor x)
        {
            using var scope = TensorScope.Begin();
            var y = Proj.Forward(x);                                                     // [B, C, T', H', W']
            int b = y.Shape[0], c = y.Shape[1], n = y.Shape[2] * y.Shape[3] * y.Shape[4];
            return scope.Keep(Ops.Permute(Ops.Reshape(y, b, c, n), 0, 2, 1));
        }
    }

    /// <summary>
    /// The keep mask over the 1 + N tokens of one block: drawn over the token grid (T', H', W') for
    /// grid masks and over the N patch tokens otherwise, shifted behind the CLS token, which is pinned.
    /// </summary>
    public KeepMask TokenMask(SbpPolicy sbp, long step, int layer, (int T, int H, int W) grid)
    {
        ArgumentNullException.ThrowIfNull(sbp);
        int n = grid.T * grid.H * grid.W;
        var m = sbp.MaskPolicy.Kind == MaskKind.Grid
            ? grid.T == 1 ? sbp.Masks.Next(step, layer, grid.H, grid.W) : sbp.Masks.Next(step, layer, grid.T, grid.H, grid.W)
            : sbp.Masks.Next(step, layer, n);
        return Config.HasClsToken ? KeepMask.FromIndices(n + 1, m.Kept.ToArray().Select(i => i + 1).Prepend(0)) : m;
    }

    public override Tensor Forward(Tensor x, SbpPolicy? sbp, long step)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (x.Rank != 5 || x.Shape[1] != Config.SampleShape[0])
            throw new ShapeMismatchException($"VideoVit '{Config.Name}': the input must be [B, {Config.SampleShape[0]}, T, H, W], got {x.Shape}.");
        if (sbp is not null && sbp.Placement != SbpPlacement.BranchOutput)
            throw new ArgumentException($"VideoVit '{Config.Name}': SBP regions sit on branch outputs (NeurIPS placement); the policy asks for {sbp.Placement}.");
        var tb = Config.Tubelet;
        var grid = (x.Shape[2] / tb.T, x.Shape[3] / tb.H, x.Shape[4] / tb.W);
        int b = x.Shape[0], n = grid.Item1 * grid.Item2 * grid.Item3;
        if (n != Config.Tokens)
            throw new ShapeMismatchException($"VideoVit '{Config.Name}': a clip {x.Shape} gives {n} tokens but the position embedding is for {Config.Tokens} (sample shape [{string.Join(", ", Config.SampleShape)}]).");
        using var scope = TensorScope.Begin();
        var tokens = PatchEmbed.Forward(x);                                               // [B, N, C]
        var h = Embed(tokens, b);                                                         // [B, (1 +) N, C]
        for (int i = 0; i < _blocks.Count; i++)
        {
            bool region = sbp is not null && sbp.Covers(Config.UsesSbp(i));
            var mask = region ? TokenMask(sbp!, step, i, grid) : null;
            var next = _blocks[i].Forward(h, mask, region ? sbp : null, $"blocks.{i}");
            h.Dispose();
            h = next;
        }
        var pooled = Config.HasClsToken
            ? Ops.Reshape(Ops.Slice(Norm.Forward(h), 1, 0, 1), b, Config.EmbedDim)
            : Norm.Forward(Ops.Mean(h, [1]));
        return scope.Keep(Head.Forward(pooled));
    }

    /// <summary>The CLS token in front (when there is one) and the positions added.</summary>
    Tensor Embed(Tensor tokens, int b)
    {
        var seq = ClsToken is { } cls ? Ops.Concat([Ops.BroadcastTo(cls, new Shape(b, 1, Config.EmbedDim)), tokens], 1) : tokens;
        var positions = PosEmbed ?? Constant("sinusoid_positions", Config.Tokens, () => Tensor.FromArray(_sinusoid!, new Shape(1, Config.Tokens, Config.EmbedDim), Device));
        return Ops.Add(seq, positions);
    }

    public override ModelSummary Summary()
    {
        var parts = new List<(string, Module?)> { ("patch_embed", PatchEmbed) };
        var rows = parts.Select(p => (p.Item1, p.Item2!.ParameterCount())).ToList();
        rows.Add(("cls_token+pos_embed", (ClsToken?.Numel ?? 0) + (PosEmbed?.Numel ?? 0)));
        for (int i = 0; i < _blocks.Count; i++) rows.Add(($"blocks.{i}", _blocks[i].ParameterCount()));
        rows.Add(("norm", Norm.ParameterCount()));
        rows.Add(("head", Head.ParameterCount()));
        return new ModelSummary(Config.Name, rows);
    }
}
