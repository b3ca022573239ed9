namespace Sbp.Models.Architectures;

/// <summary>
/// A video ViT with joint space-time attention (ViViT model 1 / TimeSformer "joint"): tubelet
/// embedding, a CLS token, learned position embedding, pre-norm blocks. SBP (NeurIPS 2022):
/// branch-output regions over tokens on the last <see cref="SbpFraction"/> of the blocks.
/// <para>VideoMAE's ViT (HF modeling_videomae.py) is the same network with <see cref="VitPositions.Sinusoidal"/>,
/// <see cref="VitPooling.MeanFcNorm"/> and LayerNorm eps 1e-12 in the blocks (fc_norm keeps 1e-5, as HF builds it; <see cref="VideoMaeB"/>); its q and v biases
/// without a k bias are the fused qkv bias with a zero k part (a k bias adds q.b to every score of a query, which
/// softmax ignores: its gradient is zero and it changes nothing).</para>
/// </summary>
public sealed record VideoVitConfig(
    string Name,
    int EmbedDim,
    int Depth,
    int Heads,
    (int T, int H, int W) Tubelet,
    int NumClasses,
    int[] SampleShape,
    float MlpRatio = 4f,
    bool QkvBias = true,
    float DropPath = 0.1f,
    double SbpFraction = 2.0 / 3.0,
    VitPositions Positions = VitPositions.Learned,
    VitPooling Pooling = VitPooling.ClsToken,
    float LayerNormEps = 1e-5f)
{
    /// <summary>ViT-Ti sized (192 wide, 12 blocks, 3 heads) on 16 x 224 x 224 clips with 2 x 16 x 16 tubelets (1568 tokens + CLS).</summary>
    public static VideoVitConfig VitT { get; } = new("vit-t", 192, 12, 3, (2, 16, 16), 400, [3, 16, 224, 224]);

    /// <summary>VideoMAE ViT-B/16 for Kinetics-400 (HF VideoMAEForVideoClassification): 16 x 224 x 224 clips, 2 x 16 x 16 tubelets, 1568 tokens.</summary>
    public static VideoVitConfig VideoMaeB { get; } = new("videomae-b", 768, 12, 12, (2, 16, 16), 400, [3, 16, 224, 224],
        Positions: VitPositions.Sinusoidal, Pooling: VitPooling.MeanFcNorm, LayerNormEps: 1e-12f);

    /// <summary>A CPU-sized video ViT: 8 x 32 x 32 clips, 4 x 4 x 4 tokens.</summary>
    public static VideoVitConfig VitMicro { get; } = new("vit-micro", 32, 6, 2, (2, 8, 8), 10, [3, 8, 32, 32]);

    /// <summary>The smallest video ViT for tests: 2 x 2 x 2 tokens + CLS, 3 blocks (SBP on the last 2).</summary>
    public static VideoVitConfig VitNano { get; } = new("vit-nano", 16, 3, 2, (2, 4, 4), 5, [3, 4, 8, 8], DropPath: 0f);

    /// <summary>Token grid (T', H', W') of a clip of the sample shape.</summary>
    public (int T, int H, int W) Grid => (SampleShape[1] / Tubelet.T, SampleShape[2] / Tubelet.H, SampleShape[3] / Tubelet.W);

    public int Tokens => Grid.T * Grid.H * Grid.W;

    /// <summary>Whether a CLS token leads the sequence (<see cref="VitPooling.ClsToken"/>).</summary>
    public bool HasClsToken => Pooling == VitPooling.ClsToken;

    /// <summary>SBP on the later <see cref="SbpFraction"/> of the blocks: block i qualifies when i &gt;= Depth - round(fraction * Depth).</summary>
    public bool UsesSbp(int block) => block >= Depth - (int)Math.Round(SbpFraction * Depth);

    internal void Validate()
    {
        if (EmbedDim < 1 || Heads < 1 || EmbedDim % Heads != 0)
            throw new ArgumentException($"VideoVitConfig '{Name}': embed dim {EmbedDim} must be divisible by {Heads} heads.");
        if (SampleShape.Length != 4 || SampleShape[1] % Tubelet.T != 0 || SampleShape[2] % Tubelet.H != 0 || SampleShape[3] % Tubelet.W != 0)
            throw new ArgumentException($"VideoVitConfig '{Name}': the sample shape [C, T, H, W] = [{string.Join(", ", SampleShape)}] must be a multiple of the tubelet {Tubelet}.");
    }
}
