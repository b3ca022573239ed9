using Sbp.Rng;
using Sbp.Tensors;

namespace Sbp.Backends.Cuda;

// Bernoulli masks from Philox bits (kernels/dropout.ptx).
public sealed partial class CudaBackend
{
    public void BernoulliMask(Tensor mask, RandomStream stream, float keepProbability, float scale)
    {
        long n = Count(mask.Numel, "BernoulliMask");
        if (n == 0) return;
        Launch(PtxKernels.BernoulliMaskF32, (n + 3) / 4 + 1, Ptr(mask), U32(n), CudaArg.U64(stream.Key), CudaArg.U64(stream.Offset),
            F32(1f - keepProbability), F32(scale));
    }
}
