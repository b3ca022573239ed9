using Sbp.Rng;
using Sbp.Tensors;

namespace Sbp.Backends.Cuda;

// Fused losses (kernels/loss.ptx, kernels/bce.ptx), optimizer updates (kernels/optim.ptx), the
// gradient-clipping reduction and dropout masks (kernels/dropout.ptx).
public sealed partial class CudaBackend
{
    public void CrossEntropyForward(Tensor logits, Tensor targets, Tensor? classWeights, float labelSmoothing, Tensor losses, Tensor logSumExp)
    {
        long rows = logits.Shape[0], classes = logits.Shape[1];
        if (rows == 0) return;
        LaunchRows("cross_entropy_f32", rows, classes, 0,
            Ptr(logits), Ptr(targets), Ptr(classWeights), Ptr(losses), Ptr(logSumExp), U32(rows), U32(classes), F32(labelSmoothing));
    }

    public void CrossEntropyBackward(Tensor logits, Tensor targets, Tensor? classWeights, float labelSmoothing, Tensor logSumExp, Tensor rowGrad, Tensor dLogits)
    {
        long rows = logits.Shape[0], classes = logits.Shape[1];
        if (rows == 0) return;
        LaunchRows("cross_entropy_bwd_f32", rows, classes, 0,
            Ptr(logits), Ptr(targets), Ptr(classWeights), Ptr(logSumExp), Ptr(rowGrad), Ptr(dLogits),
            U32(rows), U32(classes), F32(labelSmoothing), U32(rowGrad.Numel == rows ? 1 : 0));
    }

    static long PosWeightCount(Tensor logits, Tensor? posWeight) =>
        posWeight is null ? 0 : posWeight.Numel == 1 ? 1 : logits.Rank == 0 ? 1 : logits.Shape[-1];

    public void BceWithLogitsForward(Tensor logits, Tensor targets, Tensor? posWeight, Tensor losses)
    {
        long n = Count(logits.Numel, "BceWithLogitsForward");
        if (n == 0) return;
        Launch("bce_f32", n, Ptr(logits), Ptr(targets), Ptr(posWeight), Ptr(losses), U32(n), U32(PosWeightCount(logits, posWeight)));
    }

    public void BceWithLogitsBackward(Tensor logits, Tensor targets, Tensor? posWeight, Tensor grad, Tensor? dLogits, Tensor? dTargets)
    {
        long n = Count(logits.Numel, "BceWithLogitsBackward");
        if (n == 0 || (dLogits is null && dTargets is null)) return;
        bool perElement = grad.Numel == logits.Numel && logits.Numel != 1;
        Launch("bce_bwd_f32", n, Ptr(logits), Ptr(targets), Ptr(posWeight), Ptr(grad), Ptr(dLogits), Ptr(dTargets),
            U32(n), U32(PosWeightCount(logits, posWeight)), U32(perElement ? 1 : 0));
    }

    public void SgdUpdate(in SgdUpdateSpec spec, Tensor param, Tensor grad, Tensor? momentumBuffer)
    {
        long n = Count(param.Numel, "SgdUpdate");
        if (n == 0) return;
        Launch("sgd_f32", n, Ptr(param), Ptr(grad), Ptr(momentumBuffer), U32(n), F32(spec.LearningRate), F32(spec.Momentum),
            F32(spec.Dampening), F32(spec.WeightDecay), U32(spec.Nesterov ? 1 : 0), U32(spec.FirstStep ? 1 : 0));
    }

    public void AdamWUpdate(in AdamWUpdateSpec spec, Tensor param, Tensor grad, Tensor expAvg, Tensor expAvgSq)
    {
        long n = Count(param.Numel, "AdamWUpdate");
        if (n == 0) return;
        Launch("adamw_f32", n, Ptr(param), Ptr(grad), Ptr(expAvg), Ptr(expAvgSq), U32(n),
            F32(spec.DecayFactor), F32(spec.Beta1), F32(spec.Beta2), F32(spec.StepSize), F32(spec.BiasCorrection2Sqrt), F32(spec.Eps));
    }

    /// <summary>
    /// Squares (mul_f32), float32 partial sums of fixed 4096-element-per-block chunks (sum_f32), then
    /// the partials added in float64 on the host in block order: deterministic for a given size.
    /// </summary>
    public double SumOfSquares(Tensor x)
    {
        long n = Count(x.Numel, "SumOfSquares");
        if (n == 0) return 0;
        int blocks = (int)Math.Clamp((n + 4095) / 4096, 1, 4096);
        using var squares = Work(x.Device, (int)n);
        using var partials = Work(x.Device, blocks);
        Launch("mul_f32", n, Ptr(x), Ptr(x), Ptr(squares), U32(n));
        Api.Launch(Function("sum_f32"), "sum_f32", (uint)blocks, Block, 0, [Ptr(squares), Ptr(partials), U32(n), F32(1f)]);
        var host = partials.ToArray();
        double sum = 0;
        foreach (var v in host) sum += v;
        return sum;
    }

    public void BernoulliMask(Tensor mask, RandomStream stream, float keepProbability, float scale)
    {
        long n = Count(mask.Numel, "BernoulliMask");
        if (n == 0) return;
        Launch("bernoulli_mask_f32", (n + 3) / 4 + 1, Ptr(mask), U32(n), CudaArg.U64(stream.Key), CudaArg.U64(stream.Offset),
            F32(1f - keepProbability), F32(scale));
    }
}
