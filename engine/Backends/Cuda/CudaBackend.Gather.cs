using Sbp.Tensors;

namespace Sbp.Backends.Cuda;

// The SBP gather and scatter-add (kernels/sbp.ptx).
public sealed partial class CudaBackend
{
    public void IndexSelect(Tensor source, int dim, Tensor indices, Tensor destination)
    {
        var (outer, _, inner) = Geometry.Split(source.Shape, dim);
        long total = Count(destination.Numel, "IndexSelect");
        if (total == 0) return;
        CheckIndicesOnDevice(indices, source.Shape[dim], "index_select");
        if (source.DType.Size() == 2)
        {
            Launch(PtxKernels.GatherB16, total, Ptr(source), Ptr(indices), Ptr(destination), U32(outer), U32(source.Shape[dim]), U32(indices.Numel), U32(inner));
            return;
        }
        bool x4 = inner % 4 == 0 && (P(source) | P(destination)) % 16 == 0;
        Launch(x4 ? PtxKernels.GatherF32x4 : PtxKernels.GatherF32, x4 ? total / 4 : total,
            Ptr(source), Ptr(indices), Ptr(destination), U32(outer), U32(source.Shape[dim]), U32(indices.Numel), U32(inner));
    }

    /// <summary>The atomic scatter-add: IndexAdd allows repeated indices, which the plain forms do not.</summary>
    public void IndexAdd(Tensor destination, int dim, Tensor indices, Tensor source)
    {
        var (outer, inner) = (destination.Shape.Product(0, dim), destination.Shape.Product(dim + 1, destination.Rank));
        long total = Count(source.Numel, "IndexAdd");
        if (total == 0) return;
        CheckIndicesOnDevice(indices, destination.Shape[dim], "index_add");
        Launch(PtxKernels.ScatterAddAtomicF32, total,
            Ptr(source), Ptr(indices), Ptr(destination), U32(outer), U32(destination.Shape[dim]), U32(indices.Numel), U32(inner));
    }
}
