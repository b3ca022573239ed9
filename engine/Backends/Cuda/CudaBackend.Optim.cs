using Sbp.Rng;
using Sbp.Tensors;

namespace Sbp.Backends.Cuda;

// Optimizer updates and the sum of squares for gradient clipping (kernels/optim.ptx).
public sealed partial class CudaBackend
{
    public void SgdUpdate(in SgdUpdateSpec spec, Tensor param, Tensor grad, Tensor? momentumBuffer)
    {
        long n = Count(param.Numel, "SgdUpdate");
        if (n == 0) return;
        Launch(PtxKernels.SgdF32, n, Ptr(param), Ptr(grad), Ptr(momentumBuffer), U32(n), F32(spec.LearningRate), F32(spec.Momentum),
            F32(spec.Dampening), F32(spec.WeightDecay), U32(spec.Nesterov ? 1 : 0), U32(spec.FirstStep ? 1 : 0));
    }

    public void AdamWUpdate(in AdamWUpdateSpec spec, Tensor param, Tensor grad, Tensor expAvg, Tensor expAvgSq)
    {
        long n = Count(param.Numel, "AdamWUpdate");
        if (n == 0) return;
        Launch(PtxKernels.AdamwF32, n, Ptr(param), Ptr(grad), Ptr(expAvg), Ptr(expAvgSq), U32(n),
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
        Launch(PtxKernels.MulF32, n, Ptr(x), Ptr(x), Ptr(squares), U32(n));
        LaunchGrid(PtxKernels.SumF32, (uint)blocks, Block, 0, [Ptr(squares), Ptr(partials), U32(n), F32(1f)]);
        var host = partials.ToArray();
        double sum = 0;
        foreach (var v in host) sum += v;
        return sum;
    }
}
