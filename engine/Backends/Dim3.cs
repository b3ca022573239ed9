namespace Sbp.Backends;

/// <summary>
/// Three spatial sizes (time, height, width) of a convolution or pooling descriptor, NCDHW order;
/// 2-D ops use T = 1.
/// </summary>
public readonly record struct Dim3(int T, int H, int W)
{
    /// <summary>The same value on every axis.</summary>
    public static Dim3 All(int value) => new(value, value, value);

    /// <summary>T * H * W.</summary>
    public long Volume => (long)T * H * W;

    public int this[int axis] => axis switch
    {
        0 => T,
        1 => H,
        2 => W,
        _ => throw new ArgumentOutOfRangeException(nameof(axis), $"Dim3: axis {axis} is not 0 (T), 1 (H) or 2 (W)."),
    };

    public override string ToString() => $"({T}, {H}, {W})";
}
