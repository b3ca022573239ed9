using Sbp.Memory;
using Sbp.Tensors;

namespace Sbp.Backends.Cuda;

// Pooling: averages through cuDNN, max pooling with indices (kernels/pool.ptx).
public sealed partial class CudaBackend
{
    public void PoolForward(in PoolSpec spec, Tensor x, Tensor y, Tensor? indices)
    {
        if (y.Numel == 0) return;
        if (spec.Mode == PoolMode.Average)
        {
            Api.PoolingForward(PoolDescriptor.From(spec), P(x), P(y));
            return;
        }
        var (i, o, k, s, p) = (spec.Input, spec.Output, spec.Kernel, spec.Stride, spec.Padding);
        Count(y.Numel, "PoolForward");
        Launch(PtxKernels.MaxPool3dF32, y.Numel, Ptr(x), Ptr(y), Ptr(indices), U32((long)spec.Batch * spec.Channels),
            U32(i.T), U32(i.H), U32(i.W), U32(o.T), U32(o.H), U32(o.W), U32(k.T), U32(k.H), U32(k.W),
            U32(s.T), U32(s.H), U32(s.W), U32(p.T), U32(p.H), U32(p.W));
    }

    public void PoolBackward(in PoolSpec spec, Tensor dy, Tensor? indices, Tensor dx)
    {
        if (dx.Numel == 0) return;
        if (spec.Mode == PoolMode.Average)
        {
            // cuDNN reads x and y only for max modes; dx and dy stand in for them (same shapes).
            Api.PoolingBackward(PoolDescriptor.From(spec), P(dy), P(dy), P(dx), P(dx));
            return;
        }
        if (indices is null) throw new ArgumentNullException(nameof(indices), "PoolBackward: max pooling needs the indices saved by PoolForward.");
        Fill(dx, 0f);
        long n = Count(dy.Numel, "PoolBackward");
        if (n == 0) return;
        Launch(PtxKernels.MaxPool3dBwdF32, n, Ptr(dy), Ptr(indices), Ptr(dx), U32(n), U32(spec.Input.Volume), U32(spec.Output.Volume));
    }
}
