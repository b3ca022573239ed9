using Sbp.Rng;
using Sbp.Tensors;

namespace Sbp.Backends.Cuda;

// Fused losses: cross-entropy (kernels/loss.ptx) and BCE with logits (kernels/bce.ptx).
public sealed partial class CudaBackend
{
    public void CrossEntropyForward(Tensor logits, Tensor targets, Tensor? classWeights, float labelSmoothing, Tensor losses, Tensor logSumExp)
    {
        long rows = logits.Shape[0], classes = logits.Shape[1];
        if (rows == 0) return;
        LaunchRows(PtxKernels.CrossEntropyF32, rows, classes, 0,
            Ptr(logits), Ptr(targets), Ptr(classWeights), Ptr(losses), Ptr(logSumExp), U32(rows), U32(classes), F32(labelSmoothing), U32(ElementType(logits.DType)));
    }

    public void CrossEntropyBackward(Tensor logits, Tensor targets, Tensor? classWeights, float labelSmoothing, Tensor logSumExp, Tensor rowGrad, Tensor dLogits)
    {
        long rows = logits.Shape[0], classes = logits.Shape[1];
        if (rows == 0) return;
        LaunchRows(PtxKernels.CrossEntropyBwdF32, rows, classes, 0,
            Ptr(logits), Ptr(targets), Ptr(classWeights), Ptr(logSumExp), Ptr(rowGrad), Ptr(dLogits),
            U32(rows), U32(classes), F32(labelSmoothing), U32(rowGrad.Numel == rows ? 1 : 0), U32(ElementType(logits.DType)));
    }

    static long PosWeightCount(Tensor logits, Tensor? posWeight) =>
        posWeight is null ? 0 : posWeight.Numel == 1 ? 1 : logits.Rank == 0 ? 1 : logits.Shape[-1];

    public void BceWithLogitsForward(Tensor logits, Tensor targets, Tensor? posWeight, Tensor losses)
    {
        long n = Count(logits.Numel, "BceWithLogitsForward");
        if (n == 0) return;
        Launch(PtxKernels.BceF32, n, Ptr(logits), Ptr(targets), Ptr(posWeight), Ptr(losses), U32(n), U32(PosWeightCount(logits, posWeight)));
    }

    public void BceWithLogitsBackward(Tensor logits, Tensor targets, Tensor? posWeight, Tensor grad, Tensor? dLogits, Tensor? dTargets)
    {
        long n = Count(logits.Numel, "BceWithLogitsBackward");
        if (n == 0 || (dLogits is null && dTargets is null)) return;
        bool perElement = grad.Numel == logits.Numel && logits.Numel != 1;
        Launch(PtxKernels.BceBwdF32, n, Ptr(logits), Ptr(targets), Ptr(posWeight), Ptr(grad), Ptr(dLogits), Ptr(dTargets),
            U32(n), U32(PosWeightCount(logits, posWeight)), U32(perElement ? 1 : 0));
    }

}
