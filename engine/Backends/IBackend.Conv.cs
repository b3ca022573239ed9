using Sbp.Tensors;

namespace Sbp.Backends;

// Convolution and pooling: what cuDNN's convolution and pooling calls do, over NCDHW tensors.
// Tensors are contiguous and [N, C, T, H, W]-shaped as the spec describes (2-D ops pass views with T = 1).
// x, w and y may be of one 16-bit type (autocast): the Float32 convolution on the exact widenings, y rounded once.
// Backward, dy may be of that 16-bit type too (autocast's backward rounds the gradient, as PyTorch's): the Float32 pass on
// the widenings, and dx or dw (Float32 tensors) rounded to that type, as cuDNN's 16-bit backward writes them. With a
// Float32 dy a 16-bit w or x is read widened and dx, dw are not rounded.
public partial interface IBackend
{
    /// <summary>y = conv(x, w) as <see cref="ConvSpec"/> defines it (no bias); y is overwritten.</summary>
    void ConvForward(in ConvSpec spec, Tensor x, Tensor weight, Tensor y);

    /// <summary>
    /// dx = the gradient of sum(dy * conv(x, w)) with respect to x (the transposed convolution of
    /// dy with w); dx is overwritten.
    /// </summary>
    void ConvBackwardData(in ConvSpec spec, Tensor dy, Tensor weight, Tensor dx);

    /// <summary>
    /// dw = the gradient of sum(dy * conv(x, w)) with respect to w (the correlation of x with dy,
    /// summed over the batch); dw is overwritten.
    /// </summary>
    void ConvBackwardFilter(in ConvSpec spec, Tensor x, Tensor dy, Tensor dweight);

}
