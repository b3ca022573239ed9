using Sbp.Tensors;

namespace Sbp.Backends;

// Moving elements: permutes and copies along an axis.
public partial interface IBackend
{
    /// <summary>dst = src with its axes reordered: dst axis i is src axis perm[i].</summary>
    void Permute(Tensor source, int[] permutation, Tensor destination);

    /// <summary>
    /// Copies (or, with accumulate, adds) src[..., srcStart : srcStart + count, ...] into
    /// dst[..., dstStart : dstStart + count, ...] along axis dim; other axes equal.
    /// </summary>
    void CopyAlongDim(Tensor source, int sourceStart, Tensor destination, int destinationStart, int dim, int count, bool accumulate);
}
