using Sbp.Tensors;

namespace Sbp.Backends;

// Convolution and pooling: what cuDNN's convolution and pooling calls do, over NCDHW tensors.
// Tensors are contiguous and [N, C, T, H, W]-shaped as the spec describes (2-D ops pass views with T = 1).
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

    /// <summary>
    /// y = pool(x) as <see cref="PoolSpec"/> defines it. For <see cref="PoolMode.Max"/>,
    /// <paramref name="indices"/> (Int32, y's shape, or null when not needed) receives the flat
    /// index (t H + h) W + w of each maximum within its input plane [T, H, W] (as PyTorch's
    /// return_indices); it is ignored for averages.
    /// </summary>
    void PoolForward(in PoolSpec spec, Tensor x, Tensor y, Tensor? indices);

    /// <summary>
    /// dx = the gradient of sum(dy * pool(x)) with respect to x; dx is overwritten. Max: each dy
    /// is added at its saved index (<paramref name="indices"/> from <see cref="PoolForward"/>,
    /// required). Average: each dy is spread evenly (dy / divisor) over its window's input elements.
    /// </summary>
    void PoolBackward(in PoolSpec spec, Tensor dy, Tensor? indices, Tensor dx);
}
