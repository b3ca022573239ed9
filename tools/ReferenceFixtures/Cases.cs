namespace Sbp.Tools.ReferenceFixtures;

/// <summary>
/// The fixture cases. Tiny configurations chosen so each one exercises a path of the official code that is easy to
/// get wrong (see README.md). The eval/train pairs share a seed, so they hold the same weights (the inputs differ in size).
/// </summary>
internal static class Cases
{
    public static IReadOnlyList<FixtureCase> All { get; } =
    [
        // Token grids (4,8,8), (4,4,4), (4,2,2): shifted windows and the -100 mask in every stage.
        new("swin-shifted", 11, new VideoSwin(embedDim: 8, depths: [2, 2, 2], heads: [1, 2, 4], patch: [2, 4, 4],
            window: [2, 2, 2], mlpRatio: 2, numClasses: 5, input: [1, 3, 8, 32, 32])),
        // Grid (3,5,5) with window (2,3,3): block padding with an odd window; the 5x5 merge is padded to 6x6.
        new("swin-odd-pad", 12, new VideoSwin(embedDim: 16, depths: [2, 2], heads: [2, 4], patch: [2, 4, 4],
            window: [2, 3, 3], mlpRatio: 2, numClasses: 4, input: [2, 3, 6, 20, 20])),
        // Grid (2,4,4) then (2,2,2), (2,1,1) under window (2,4,4): the effective window shrinks and the bias uses
        // the full window's relative_position_index[:N, :N]; the 2x2 map after layers.1 merges to 1x1.
        new("swin-small-map", 13, new VideoSwin(embedDim: 8, depths: [2, 2, 2], heads: [1, 2, 4], patch: [2, 4, 4],
            window: [2, 4, 4], mlpRatio: 2, numClasses: 5, input: [1, 3, 4, 16, 16])),
        new("videomae-tiny", 21, new VideoMae(hidden: 16, layers: 2, heads: 2, intermediate: 64, tubelet: 2, patch: 4,
            frames: 4, image: 8, numClasses: 5, input: [2, 3, 4, 8, 8])),
        new("resnet18-tiny-eval", 31, ResNet18Tiny([2, 3, 32, 32])),
        // Train mode at 32x32 leaves 2 values per channel (batch 2, 1x1 map) in layer4's BatchNorms: there the batch
        // variance is a near-cancelling difference and float32 gradients were only good to ~1e-3 of float64. At 64x64
        // every BatchNorm sees at least 8 values and float32 agrees with float64 to ~2e-5.
        new("resnet18-tiny-train", 31, ResNet18Tiny([2, 3, 64, 64]), BnTrain: true),
        new("resnet50-tiny-eval", 33, new ResNet(bottleneck: true, stemWidth: 8, widths: [16, 32, 64, 128],
            blocks: [1, 1, 1, 1], numClasses: 5, input: [2, 3, 32, 32])),
        new("r2plus1d-tiny-eval", 41, R2Plus1dTiny([2, 3, 8, 16, 16])),
        // Same reason as resnet18-tiny-train: at 8x16x16 layer4 is 1x1x1 (2 values per channel); at 8x32x32 it is 1x2x2.
        new("r2plus1d-tiny-train", 41, R2Plus1dTiny([2, 3, 8, 32, 32]), BnTrain: true),
    ];

    static ResNet ResNet18Tiny(long[] input) => new(bottleneck: false, stemWidth: 4, widths: [4, 8, 16, 32],
        blocks: [2, 2, 2, 2], numClasses: 5, input: input);

    static R2Plus1d R2Plus1dTiny(long[] input) => new(stemMid: 4, stemWidth: 4, widths: [4, 8, 16, 32],
        blocks: [1, 1, 1, 1], numClasses: 5, input: input);
}
