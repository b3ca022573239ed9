namespace Sbp.Models.Architectures;

/// <summary>
/// A per-frame action detector in the spirit of the CVPR paper's end-to-end LSTR experiment: a 2-D
/// ResNet applied to every frame of a long clip (BatchNorm frozen, affine trained), features pooled
/// per frame, and a temporal transformer head that predicts a class for every frame. SBP: the
/// backbone stages are regions over frames (the first <see cref="SbpStages"/> of stem+layer1,
/// layer2, layer3, layer4); the head trains with the full gradient.
/// </summary>
public sealed record FrameDetectorConfig(
    string Name,
    int[] Widths,
    int[] Blocks,
    bool Bottleneck,
    int StemWidth,
    int StemKernel,
    int StemStride,
    bool StemPool,
    int HeadDim,
    int HeadDepth,
    int HeadHeads,
    int NumClasses,
    int[] SampleShape,
    bool CausalHead = true,
    bool FreezeBatchNorm = true,
    int SbpStages = 4)
{
    /// <summary>ResNet-50 per frame (23.5 M backbone parameters) and a 2-block temporal transformer, THUMOS'14 classes (20 + background + ambiguous).</summary>
    public static FrameDetectorConfig DetR50 { get; } = new("det-r50", [256, 512, 1024, 2048], [3, 4, 6, 3], true, 64, 7, 2, true,
        256, 2, 4, 22, [256, 3, 112, 112]);

    /// <summary>ResNet-18 per frame (11.2 M backbone parameters) and a 2-block temporal transformer.</summary>
    public static FrameDetectorConfig DetR18 { get; } = new("det-r18", [64, 128, 256, 512], [2, 2, 2, 2], false, 64, 7, 2, true,
        256, 2, 4, 22, [256, 3, 112, 112]);

    /// <summary>A CPU-sized detector: 64 frames of 32 px, a small ResNet, one head block.</summary>
    public static FrameDetectorConfig DetMicro { get; } = new("det-micro", [8, 16, 32, 64], [1, 1, 1, 1], false, 8, 3, 1, false,
        32, 1, 2, 5, [64, 3, 32, 32]);

    /// <summary>The smallest detector for tests: 8 frames of 8 px.</summary>
    public static FrameDetectorConfig DetNano { get; } = new("det-nano", [4, 8, 8, 16], [1, 1, 1, 1], false, 4, 3, 1, false,
        8, 1, 2, 3, [8, 3, 8, 8]);

    /// <summary>Output channels of stage <paramref name="stage"/>.</summary>
    public int StageOut(int stage) => Widths[stage];

    /// <summary>Inner width of a stage's blocks (a quarter of the output for bottlenecks, as torchvision).</summary>
    public int StageInner(int stage) => Bottleneck ? Widths[stage] / 4 : Widths[stage];

    internal void Validate()
    {
        if (Widths.Length != 4 || Blocks.Length != 4)
            throw new ArgumentException($"FrameDetectorConfig '{Name}': need 4 stage widths and block counts, got [{string.Join(", ", Widths)}] and [{string.Join(", ", Blocks)}].");
        if (Bottleneck && Widths.Any(w => w % 4 != 0))
            throw new ArgumentException($"FrameDetectorConfig '{Name}': bottleneck widths must be multiples of 4 (output = 4 x inner).");
        if (HeadDim % HeadHeads != 0)
            throw new ArgumentException($"FrameDetectorConfig '{Name}': head dim {HeadDim} must be divisible by {HeadHeads} heads.");
        if (SampleShape.Length != 4)
            throw new ArgumentException($"FrameDetectorConfig '{Name}': the sample shape must be [T, C, H, W], got [{string.Join(", ", SampleShape)}].");
        if (SbpStages is < 0 or > 4)
            throw new ArgumentException($"FrameDetectorConfig '{Name}': SbpStages must be 0..4, got {SbpStages}.");
    }
}
