using Sbp.Tensors;

namespace Sbp.Backends.Cuda;

// Moving elements: permutes and copies along an axis (strided_copy_f32).
public sealed partial class CudaBackend
{
    public void Permute(Tensor source, int[] permutation, Tensor destination)
    {
        var srcStrides = source.Shape.Strides();
        var xStrides = permutation.Select(p => srcStrides[p]).ToArray();
        var (dims, strides) = Geometry.Collapse(destination.Shape.Dims, xStrides, destination.Shape.Strides());
        StridedCopy(destination.Device, P(source), P(destination), dims, strides[0], strides[1], accumulate: false, "Permute");
    }

    public void CopyAlongDim(Tensor source, int sourceStart, Tensor destination, int destinationStart, int dim, int count, bool accumulate)
    {
        var (outer, ns, inner) = Geometry.Split(source.Shape, dim);
        int nd = destination.Shape[dim];
        var (dims, strides) = Geometry.Collapse(new[] { (int)outer, count, (int)inner },
            [ns * inner, inner, 1], [nd * inner, inner, 1]);
        StridedCopy(destination.Device, P(source, sourceStart * inner), P(destination, destinationStart * inner),
            dims, strides[0], strides[1], accumulate, "CopyAlongDim");
    }

}
