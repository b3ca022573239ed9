namespace Sbp.Models.Architectures;

/// <summary>
/// torchvision's R(2+1)D (torchvision/models/video/resnet.py: VideoResNet with BasicBlock, Conv2Plus1D and
/// R2Plus1dStem), with the stem's and stages' widths as parameters so tiny versions exist for tests.
/// <see cref="StemMid"/> is the stem's middle width (45 in torchvision, where 64 is the stem's output).
/// </summary>
public sealed record VideoResNetConfig(string Name, int StemMid, int StemWidth, int[] Widths, int[] Blocks, int NumClasses, int[] SampleShape)
{
    /// <summary>torchvision's r2plus1d_18 (31,505,325 parameters with a 400-class fc), on 16 frames of 112 px.</summary>
    public static VideoResNetConfig R2Plus1d18 { get; } = new("r2plus1d-18", 45, 64, [64, 128, 256, 512], [2, 2, 2, 2], 400, [3, 16, 112, 112]);

    /// <summary>The smallest, for tests: 8 frames of 16 px (the configuration of the r2plus1d-tiny reference fixtures).</summary>
    public static VideoResNetConfig R2Plus1dNano { get; } = new("r2plus1d-nano", 4, 4, [4, 8, 16, 32], [1, 1, 1, 1], 5, [3, 8, 16, 16]);

    /// <summary>
    /// torchvision's middle width of a Conv2Plus1D in a block from <paramref name="inPlanes"/> to <paramref name="planes"/>:
    /// (in * planes * 27) / (in * 9 + 3 * planes), so the (2+1)-D pair has about the parameters of a 3 x 3 x 3 convolution.
    /// The block computes it once and uses it for both its convolutions (as torchvision does).
    /// </summary>
    public static int MidPlanes(int inPlanes, int planes) => inPlanes * planes * 3 * 3 * 3 / (inPlanes * 3 * 3 + 3 * planes);

    internal void Validate()
    {
        if (StemMid < 1 || StemWidth < 1 || Widths.Length != 4 || Blocks.Length != 4 || Widths.Any(w => w < 1) || Blocks.Any(b => b < 1))
            throw new ArgumentException($"VideoResNetConfig '{Name}': need positive stem widths and 4 positive stage widths and block counts, got stem {StemMid}/{StemWidth}, widths [{string.Join(", ", Widths)}], blocks [{string.Join(", ", Blocks)}].");
        if (NumClasses < 1) throw new ArgumentException($"VideoResNetConfig '{Name}': the class count must be >= 1, got {NumClasses}.");
        if (SampleShape.Length != 4) throw new ArgumentException($"VideoResNetConfig '{Name}': the sample shape must be [C, T, H, W], got [{string.Join(", ", SampleShape)}].");
    }
}
