using Sbp.Nn;
using Sbp.Rng;
using Sbp.Stochastic;
using Sbp.Tensors;

namespace Sbp.Models.Architectures;

/// <summary>
/// Video Swin Transformer with an I3D-style classification head, on clips x [B, C, T, H, W]:
/// patch_embed -> stages ("layers.i.blocks.j", "layers.i.downsample" on all but the last) ->
/// norm -> mean over (T, H, W) -> dropout -> head (Linear). Logits [B, classes]. As the official code
/// by default; with <see cref="SwinSmallGridMerge.WidenChannels"/> a downsample whose stage grid is already
/// at most 2 x 2 (e.g. swin-micro on 32 px clips) only widens the channels (<see cref="MergesSpatially"/>).
/// <para>SBP (CVPR 2022): the blocks that <see cref="VideoSwinConfig.UsesSbp"/> selects (every block
/// with <see cref="SbpCoverage.AllBlocks"/>) are regions
/// over time with the policy's mask (block-output placement; the model uses the policy's masks,
/// drawn per block over the T' token frames with the block's global index as the layer).</para>
/// </summary>
public sealed class VideoSwinTransformer : VideoModel
{
    readonly List<SwinStage> _stages = [];

    public VideoSwinTransformer(VideoSwinConfig config, RandomSource rng, Device? device = null) : base(device)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(rng);
        config.Validate();
        Config = config;
        PatchEmbed = RegisterModule("patch_embed", new PatchEmbed3d(config.Patch, config.SampleShape[0], config.EmbedDim, config.PatchNorm, rng, device,
            config.StemChannels));
        var rates = Inits.DropPathRates(config.DropPath, config.Depths.Sum());
        int k = 0;
        var layers = RegisterModule("layers", new Sequential(device));
        for (int s = 0; s < config.StageCount; s++)
        {
            int dim = config.StageDim(s);
            var blocks = new List<SwinBlock3d>();
            for (int j = 0; j < config.Depths[s]; j++)
                blocks.Add(new SwinBlock3d(dim, config.Heads[s], config.Window, shifted: j % 2 == 1, config.MlpRatio, config.QkvBias, rates[k++], rng, device,
                    config.BiasIndex));
            var down = s < config.StageCount - 1 ? new PatchMerging3d(dim, rng, device, MergesSpatially(config, s)) : null;
            var stage = new SwinStage(blocks, down, device);
            layers.Append(stage);
            _stages.Add(stage);
        }
        int features = config.StageDim(config.StageCount - 1);
        Norm = RegisterModule("norm", new LayerNorm(features, device: device));
        HeadDropout = RegisterModule("head_drop", new Dropout(config.HeadDropout, rng, device));
        Head = RegisterModule("head", new Linear(features, config.NumClasses, rng, device: device));
        Inits.TransformerDefaults(this, rng);
    }

    /// <summary>
    /// Whether the downsample after stage <paramref name="stage"/> merges 2 x 2 neighbours: always in the
    /// official code; with <see cref="SwinSmallGridMerge.WidenChannels"/> not when the stage's token grid (from
    /// the config's sample size) is already at most 2 x 2, where merging would leave one token with
    /// per-quadrant weights; then it only doubles the channels (see <see cref="PatchMerging3d"/>).
    /// </summary>
    public static bool MergesSpatially(VideoSwinConfig config, int stage)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (config.SmallGridMerge == SwinSmallGridMerge.Official) return true;
        int h = (config.SampleShape[2] + config.Patch.H - 1) / config.Patch.H, w = (config.SampleShape[3] + config.Patch.W - 1) / config.Patch.W;
        for (int s = 0; s < stage; s++)
            if (h > 2 || w > 2) (h, w) = ((h + 1) / 2, (w + 1) / 2);
        return h > 2 || w > 2;
    }

    public VideoSwinConfig Config { get; }
    public override string ConfigName => Config.Name;
    public override int[] SampleShape => (int[])Config.SampleShape.Clone();
    public override int NumClasses => Config.NumClasses;
    public PatchEmbed3d PatchEmbed { get; }
    /// <summary>"layers.i": the stages.</summary>
    public IReadOnlyList<SwinStage> Stages => _stages;
    public LayerNorm Norm { get; }
    public Dropout HeadDropout { get; }
    public Linear Head { get; }

    /// <summary>The regions a policy with <paramref name="coverage"/> would create, as (stage, block) pairs in forward order.</summary>
    public IEnumerable<(int Stage, int Block)> SbpBlocks(SbpCoverage coverage = SbpCoverage.Model) =>
        Enumerable.Range(0, Config.StageCount).SelectMany(s => Enumerable.Range(0, Config.Depths[s])
            .Where(j => coverage == SbpCoverage.AllBlocks || Config.UsesSbp(s, j)).Select(j => (s, j)));

    public override Tensor Forward(Tensor x, SbpPolicy? sbp, long step)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (sbp is not null && sbp.Placement != SbpPlacement.BlockOutput)
            throw new ArgumentException($"VideoSwinTransformer '{Config.Name}': SBP regions sit on block outputs (CVPR placement); the policy asks for {sbp.Placement}.");
        if (sbp is not null && GridProblem(sbp) is { } why) throw new ArgumentException(why);
        using var scope = TensorScope.Begin();
        var h = PatchEmbed.Forward(x);                                                    // [B, T', H', W', C]
        int layer = 0;
        for (int s = 0; s < Config.StageCount; s++)
        {
            var stage = _stages[s];
            for (int j = 0; j < stage.Blocks.Count; j++, layer++)
            {
                bool region = sbp is not null && sbp.Covers(Config.UsesSbp(s, j));
                var mask = region ? sbp!.Masks.Next(step, layer, h.Shape[1]) : null;
                h = Replace(h, stage.Blocks[j].Forward(h, mask, region ? sbp : null, $"layers.{s}.blocks.{j}"));
            }
            if (stage.Downsample is { } down) h = Replace(h, down.Forward(h));
        }
        var pooled = Ops.Mean(Norm.Forward(h), [1, 2, 3]);                             // [B, C]
        return scope.Keep(Head.Forward(HeadDropout.Forward(pooled)));
    }

    string? GridProblem(SbpPolicy sbp) => sbp.MaskPolicy.Kind != MaskKind.Grid ? null :
        $"VideoSwinTransformer '{Config.Name}': SBP masks are over frames (one axis); grid masks need 2 or 3 axes. " +
        "Use a strided mask (the CVPR mask: `--mask strided` or `strided-random` in sbp, MaskKind.Strided in code), whose stride divides the temporal window.";

    /// <summary>
    /// The first region whose temporal windows would not keep the same frames with the step-0 masks, on the
    /// token grids of the config's sample shape (<see cref="SwinGeometry.TemporalMaskProblem"/>: the regions' own rule).
    /// </summary>
    public override string? SbpProblem(SbpPolicy policy)
    {
        ArgumentNullException.ThrowIfNull(policy);
        if (GridProblem(policy) is { } grid) return grid;
        var c = Config;
        int t = (c.SampleShape[1] + c.Patch.T - 1) / c.Patch.T, h = (c.SampleShape[2] + c.Patch.H - 1) / c.Patch.H, w = (c.SampleShape[3] + c.Patch.W - 1) / c.Patch.W;
        int layer = 0;
        for (int s = 0; s < c.StageCount; s++)
        {
            foreach (var (block, j) in _stages[s].Blocks.Select((b, j) => (b, j)))
            {
                if (policy.Covers(c.UsesSbp(s, j)) &&
                    SwinGeometry.TemporalMaskProblem(policy.Masks.Next(0, layer, t), (t, h, w), block.Window, block.Shift) is { } why)
                    return $"{c.Name} layers.{s}.blocks.{j} on {c.SampleShape[1]} frames of {c.SampleShape[2]}x{c.SampleShape[3]}: {why}";
                layer++;
            }
            if (_stages[s].Downsample is { Spatial: true }) (h, w) = ((h + 1) / 2, (w + 1) / 2);
        }
        return null;
    }

    /// <summary>Frees the previous activation as soon as the next one exists (the tape keeps what backward needs).</summary>
    static Tensor Replace(Tensor previous, Tensor next)
    {
        previous.Dispose();
        return next;
    }

    public override ModelSummary Summary()
    {
        var parts = new List<(string, Module?)> { ("patch_embed", PatchEmbed) };
        for (int s = 0; s < Config.StageCount; s++) parts.Add(($"stage{s + 1}", _stages[s]));
        parts.Add(("norm", Norm));
        parts.Add(("head", Head));
        return ModelSummary.Of(Config.Name, [.. parts]);
    }
}
