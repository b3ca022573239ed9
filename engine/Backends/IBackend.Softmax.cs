using Sbp.Tensors;

namespace Sbp.Backends;

// Softmax and log-softmax along an axis.
public partial interface IBackend
{
    /// <summary>y = softmax(x) (or log-softmax) along dim.</summary>
    void Softmax(Tensor x, Tensor y, int dim, bool log);

    /// <summary>dx from y = softmax(x) (or log-softmax) and dy, along dim.</summary>
    void SoftmaxBackward(Tensor y, Tensor dy, Tensor dx, int dim, bool log);
}
