namespace Sbp.Models.Architectures;

/// <summary>
/// A Video Swin Transformer configuration (Liu et al., "Video Swin Transformer"). Sizes are
/// (T, H, W). SBP (CVPR 2022): block-output regions over the time axis on the first
/// <see cref="SbpStages"/> stages, except the last <see cref="SbpSkipLastBlocks"/> blocks of the
/// last of those stages.
/// <para>Follows the official code (SwinTransformer/Video-Swin-Transformer) by default; <see cref="BiasIndex"/> and
/// <see cref="SmallGridMerge"/> name the two places where a variant of ours may be chosen instead (they matter only
/// when a stage's token grid is smaller than the window, or at most 2 x 2). The CPU presets swin-micro and
/// swin-nano keep their grid at 2 x 2 (<see cref="SwinSmallGridMerge.WidenChannels"/>).</para>
/// <para><see cref="StemChannels"/> &gt; 0 adds a convolutional stem before the patch embedding (see
/// <see cref="PatchEmbed3d"/>); 0, the official layout, is the default.</para>
/// </summary>
public sealed record VideoSwinConfig(
    string Name,
    int EmbedDim,
    int[] Depths,
    int[] Heads,
    (int T, int H, int W) Patch,
    (int T, int H, int W) Window,
    int NumClasses,
    int[] SampleShape,
    float MlpRatio = 4f,
    bool QkvBias = true,
    bool PatchNorm = true,
    float DropPath = 0.1f,
    float HeadDropout = 0.5f,
    int SbpStages = 3,
    int SbpSkipLastBlocks = 2,
    SwinBiasIndex BiasIndex = SwinBiasIndex.Official,
    SwinSmallGridMerge SmallGridMerge = SwinSmallGridMerge.Official,
    int StemChannels = 0)
{
    /// <summary>Video Swin-T (Kinetics-400): 28.2 M parameters.</summary>
    public static VideoSwinConfig SwinT { get; } = new("swin-t", 96, [2, 2, 6, 2], [3, 6, 12, 24], (2, 4, 4), (8, 7, 7), 400, [3, 32, 224, 224]);

    /// <summary>Video Swin-S (Kinetics-400): 49.8 M parameters.</summary>
    public static VideoSwinConfig SwinS { get; } = new("swin-s", 96, [2, 2, 18, 2], [3, 6, 12, 24], (2, 4, 4), (8, 7, 7), 400, [3, 32, 224, 224], DropPath: 0.2f);

    /// <summary>A CPU-sized Video Swin: 16 frames of 64 px, 8 x 16 x 16 tokens (the benchmarks' Swin).</summary>
    public static VideoSwinConfig SwinMicro { get; } = new("swin-micro", 24, [2, 2, 4, 2], [1, 2, 4, 8], (2, 4, 4), (4, 4, 4), 10, [3, 16, 64, 64],
        SmallGridMerge: SwinSmallGridMerge.WidenChannels);

    /// <summary>
    /// swin-micro with a 16-channel convolutional stem: without one it never told the sense of a rotation on the
    /// synthetic task; with 8 channels, 87 % instead of 94 %. Dense in every mode (the stem is outside the regions).
    /// No stochastic depth: with drop path 0.1 whether the rotation pair was learned depended on the seed
    /// (benchmarks/results/transformers-8class).
    /// </summary>
    public static VideoSwinConfig SwinMicroStem { get; } = SwinMicro with { Name = "swin-micro-stem", StemChannels = 16, DropPath = 0f };

    /// <summary>The smallest Video Swin for tests: 4 x 8 x 8 tokens, shifted windows in stages 1 and 3.</summary>
    public static VideoSwinConfig SwinNano { get; } = new("swin-nano", 8, [2, 1, 3, 1], [1, 2, 2, 4], (1, 2, 2), (2, 2, 2), 5, [3, 4, 16, 16],
        DropPath: 0f, HeadDropout: 0f, SmallGridMerge: SwinSmallGridMerge.WidenChannels);

    public int StageCount => Depths.Length;

    /// <summary>Channels of stage <paramref name="stage"/>: EmbedDim * 2^stage.</summary>
    public int StageDim(int stage) => EmbedDim << stage;

    /// <summary>The paper's placement: blocks of stages below SbpStages, except the last SbpSkipLastBlocks of stage SbpStages - 1.</summary>
    public bool UsesSbp(int stage, int block) =>
        stage < SbpStages && !(stage == SbpStages - 1 && block >= Depths[stage] - SbpSkipLastBlocks);

    internal void Validate()
    {
        if (Depths.Length == 0 || Heads.Length != Depths.Length)
            throw new ArgumentException($"VideoSwinConfig '{Name}': need one head count per stage, got depths [{string.Join(", ", Depths)}] and heads [{string.Join(", ", Heads)}].");
        for (int s = 0; s < Depths.Length; s++)
            if (StageDim(s) % Heads[s] != 0)
                throw new ArgumentException($"VideoSwinConfig '{Name}': stage {s} has {StageDim(s)} channels, not divisible by {Heads[s]} heads.");
        if (Patch.T < 1 || Patch.H < 1 || Patch.W < 1 || Window.T < 1 || Window.H < 1 || Window.W < 1)
            throw new ArgumentException($"VideoSwinConfig '{Name}': patch {Patch} and window {Window} must be positive.");
        if (StemChannels < 0)
            throw new ArgumentException($"VideoSwinConfig '{Name}': the stem's channels must be 0 (no stem) or positive, got {StemChannels}.");
        if (SampleShape.Length != 4)
            throw new ArgumentException($"VideoSwinConfig '{Name}': the sample shape must be [C, T, H, W], got [{string.Join(", ", SampleShape)}].");
    }
}
