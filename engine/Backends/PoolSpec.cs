namespace Sbp.Backends;

/// <summary>The reduction of a pooling window.</summary>
public enum PoolMode
{
    /// <summary>Maximum; padding counts as -infinity; ties go to the first maximum in window order (t, then h, then w).</summary>
    Max,
    /// <summary>Mean; padding counts as 0 and, with CountIncludePad, in the divisor.</summary>
    Average,
}

/// <summary>
/// A 3-D pooling descriptor (cuDNN's NCDHW pooling, PyTorch's MaxPool3d/AvgPool3d with ceil_mode
/// off): x [N, C, T, H, W] to y [N, C, oT, oH, oW], out = floor((in + 2 pad - k) / stride) + 1
/// per axis; the window of output (t, h, w) starts at (t sT - pT, h sH - pH, w sW - pW).
/// The average's divisor is the window's size clipped to the padded input when
/// <see cref="CountIncludePad"/> (PyTorch's rule), else the number of input elements in the window.
/// 2-D pooling is the same descriptor with T = kT = stride T = 1 and padding T = 0.
/// </summary>
public readonly record struct PoolSpec(
    PoolMode Mode, int Batch, int Channels,
    Dim3 Input, Dim3 Kernel, Dim3 Stride, Dim3 Padding, bool CountIncludePad = true)
{
    /// <summary>The output's spatial sizes.</summary>
    public Dim3 Output => new(OutSize(0), OutSize(1), OutSize(2));

    /// <summary>floor((in + 2 pad - k) / stride) + 1 on one axis (may be &lt; 1 for invalid specs).</summary>
    public int OutSize(int axis)
    {
        long span = (long)Input[axis] + 2L * Padding[axis] - Kernel[axis];
        return span < 0 ? 0 : (int)(span / Stride[axis] + 1);
    }
}
