namespace Sbp.Backends;

/// <summary>
/// A grouped, strided, padded, dilated 3-D cross-correlation (PyTorch's Conv3d, cuDNN's NCDHW
/// convolution descriptor in cross-correlation mode):
/// x [N, C, T, H, W], weight [O, C / G, kT, kH, kW], y [N, O, oT, oH, oW] with
/// y[n, o, t, h, w] = sum over c in group(o), (i, j, k) of
///   w[o, c - g*C/G, i, j, l] * x[n, c, t*sT - pT + i*dT, h*sH - pH + j*dH, w*sW - pW + l*dW]
/// (terms outside the input are zero) and, per axis, out = floor((in + 2 pad - dil (k - 1) - 1) / stride) + 1.
/// Output channel o belongs to group g = o / (O / G), which reads input channels [g C/G, (g+1) C/G).
/// A 2-D convolution is the same descriptor with T = kT = 1, stride/dilation 1 and padding 0 on T.
/// </summary>
public readonly record struct ConvSpec(
    int Batch, int InChannels, int OutChannels, int Groups,
    Dim3 Input, Dim3 Kernel, Dim3 Stride, Dim3 Padding, Dim3 Dilation)
{
    /// <summary>The output's spatial sizes.</summary>
    public Dim3 Output => new(OutSize(0), OutSize(1), OutSize(2));

    /// <summary>floor((in + 2 pad - dil (k - 1) - 1) / stride) + 1 on one axis (may be &lt; 1 for invalid specs).</summary>
    public int OutSize(int axis)
    {
        long span = (long)Input[axis] + 2L * Padding[axis] - (long)Dilation[axis] * (Kernel[axis] - 1) - 1;
        return span < 0 ? 0 : (int)(span / Stride[axis] + 1);
    }

    public int InPerGroup => InChannels / Groups;
    public int OutPerGroup => OutChannels / Groups;

    /// <summary>A 1x1x1 kernel with stride 1 and no padding: the input is its own im2col matrix.</summary>
    public bool IsPointwise => Kernel == Dim3.All(1) && Stride == Dim3.All(1) && Padding == Dim3.All(0);
}
