using Sbp.Tensors;

namespace Sbp.Autograd;

/// <summary>
/// Watches a backward pass (<see cref="Tape.GradientObserver"/>): told when a leaf's gradient is final (no op
/// left to run can add to it), and after every op's backward. Data parallelism uses it to start a bucket's
/// all-reduce while backward goes on, like PyTorch's post-accumulate-grad hooks.
/// </summary>
public interface IGradientReadyObserver
{
    /// <summary><paramref name="leaf"/> (a tensor that requires grad and was an input of a recorded op) has its final gradient
    /// for this pass in <see cref="Tensor.Grad"/> (null when no op handed it one).</summary>
    void GradientReady(Tensor leaf);

    /// <summary>Called after each recorded op's backward (a chance to progress communication).</summary>
    void BackwardProgress();
}
