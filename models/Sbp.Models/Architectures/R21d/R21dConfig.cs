namespace Sbp.Models.Architectures;

/// <summary>
/// A (2+1)-D convolutional action recognizer: per stage, a spatial block of two 1 x 3 x 3
/// convolutions (per frame: an SBP region over time) and a 3 x 1 x 1 temporal convolution with a
/// residual (outside the region: it mixes frames and trains with the full gradient).
/// </summary>
public sealed record R21dConfig(string Name, int StemWidth, int[] Widths, int NumClasses, int[] SampleShape)
{
    /// <summary>The CPU main-job model: stem 16, stages 32-64, 16 frames of 32 x 32, 8 classes.</summary>
    public static R21dConfig R21dMicro { get; } = new("r21d-micro", 16, [32, 64], 8, [3, 16, 32, 32]);

    /// <summary>The smallest, for tests.</summary>
    public static R21dConfig R21dNano { get; } = new("r21d-nano", 4, [4, 8], 3, [3, 4, 8, 8]);

    internal void Validate()
    {
        if (StemWidth < 1 || Widths.Length == 0 || Widths.Any(w => w < 1)) throw new ArgumentException($"R21dConfig '{Name}': widths must be positive, got [{string.Join(", ", Widths)}].");
        if (NumClasses < 1) throw new ArgumentException($"R21dConfig '{Name}': the class count must be >= 1, got {NumClasses}.");
        if (SampleShape.Length != 4) throw new ArgumentException($"R21dConfig '{Name}': the sample shape must be [C, T, H, W], got [{string.Join(", ", SampleShape)}].");
    }
}
