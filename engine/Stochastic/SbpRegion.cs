using Sbp.Tensors;

namespace Sbp.Stochastic;

/// <summary>
/// An SBP region: runs <c>body</c> on <c>x</c> over all positions (the forward is unchanged) and,
/// in backward, gives the region the gradient at its output times the keep mask along dimension
/// <c>dim</c>, caching and computing only what the kept positions need (docs/SBP.md).
/// </summary>
public static class SbpRegion
{
    /// <summary>
    /// y = body(x). With a null mask (or one that keeps every position) and SparseCache this is
    /// ordinary backprop. The mask's size must equal x.Shape[dim].
    /// </summary>
    public static Tensor Run(string name, Tensor x, int dim, KeepMask? mask, Func<Tensor, Tensor> body, RegionOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(body);
        options ??= RegionOptions.Default;
        if ((mask is null || mask.KeptCount == mask.Size) && options.Mode == RegionMode.SparseCache) return body(x);
        if (options.Mode == RegionMode.Oracle)
        {
            var y = body(x);
            return mask is null ? y : Ops.GradMask(y, dim, mask);
        }
        throw new NotSupportedException($"SbpRegion '{name}': in progress (issue 4).");
    }
}
