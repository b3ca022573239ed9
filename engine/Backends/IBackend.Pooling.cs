using Sbp.Tensors;

namespace Sbp.Backends;

// Max and average pooling.
public partial interface IBackend
{
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
