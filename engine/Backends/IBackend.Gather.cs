using Sbp.Tensors;

namespace Sbp.Backends;

// Gather and scatter-add along an axis: the pair SBP packs kept positions with.
public partial interface IBackend
{
    /// <summary>
    /// Gather: dst[..., i, ...] = src[..., indices[i], ...] along dim (the SBP pack). Float32 elements, or 16-bit ones
    /// (a copy: SBP's 16-bit rows of an odd length; even ones move as Float32 pairs).
    /// </summary>
    void IndexSelect(Tensor source, int dim, Tensor indices, Tensor destination);

    /// <summary>
    /// <see cref="IndexSelect(Tensor, int, Tensor, Tensor)"/> into a destination that is read again
    /// only much later (SBP's compact copies of saved activations): a backend may write it past
    /// its caches (the CPU's streaming stores). Same result.
    /// </summary>
    void IndexSelectForLater(Tensor source, int dim, Tensor indices, Tensor destination) => IndexSelect(source, dim, indices, destination);

    /// <summary>Scatter-add: dst[..., indices[i], ...] += src[..., i, ...] along dim; repeated indices add up.</summary>
    void IndexAdd(Tensor destination, int dim, Tensor indices, Tensor source);
}
