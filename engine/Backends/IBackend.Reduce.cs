using Sbp.Tensors;

namespace Sbp.Backends;

// Reductions to kept axes.
public partial interface IBackend
{
    /// <summary>dst = sum of src over the axes where dst has size 1 and src does not (same rank).</summary>
    void ReduceSum(Tensor source, Tensor destination);

    /// <summary>dst = max of src over the axes where dst has size 1 and src does not (same rank).</summary>
    void ReduceMax(Tensor source, Tensor destination);
}
