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
        using var squares = Work(x.Device, (int)n);
        using var partials = Work(x.Device, SquareBlocks(n));
        SquarePartials(x, squares, P(partials));
        var host = partials.ToArray();
        double sum = 0;
        foreach (var v in host) sum += v;
        return sum;
    }

    /// <summary>
    /// Each gradient's squares summed into its own slots of one partials buffer (<see cref="SquarePartials"/>), the partials
    /// summed by one block, then clip_coef_f32 and scale_by_f32: all queued, nothing read back.
    /// </summary>
    public void ClipGradNorm(IReadOnlyList<Tensor> grads, float maxNorm, Tensor norm)
    {
        var blocks = grads.Select(g => g.Numel == 0 ? 0 : SquareBlocks(Count(g.Numel, "ClipGradNorm"))).ToArray();
        int slots = Math.Max(blocks.Sum(), 1);
        using var squares = Work(norm.Device, (int)Math.Max(grads.Select(g => g.Numel).DefaultIfEmpty(1).Max(), 1));
        using var partials = Work(norm.Device, slots);
        using var scalars = Work(norm.Device, 2);   // the sum of squares, the coefficient
        Api.Memset32(P(partials), 0, slots);
        long at = 0;
        for (int i = 0; i < grads.Count; i++)
        {
            if (blocks[i] > 0) SquarePartials(grads[i], squares, P(partials, at));
            at += blocks[i];
        }
        LaunchGrid(PtxKernels.SumF32, 1, Block, 0, [Ptr(partials), Ptr(scalars), U32(slots), F32(1f)]);
        LaunchGrid(PtxKernels.ClipCoefF32, 1, 1, 0, [Ptr(scalars), F32(maxNorm), Ptr(norm), Ptr(P(scalars, 1))]);
        foreach (var g in grads)
            if (g.Numel > 0) Launch(PtxKernels.ScaleByF32, g.Numel, Ptr(g), U32(g.Numel), Ptr(P(scalars, 1)));
    }

    /// <summary>Blocks of a sum of squares' first pass: one per 4096 elements, at most 4096 (grid-stride beyond).</summary>
    static int SquareBlocks(long n) => (int)Math.Clamp((n + 4095) / 4096, 1, 4096);

    /// <summary>x squared into <paramref name="squares"/> (mul_f32), then one partial sum per block at <paramref name="partials"/> (sum_f32).</summary>
    void SquarePartials(Tensor x, Tensor squares, ulong partials)
    {
        long n = x.Numel;
        Launch(PtxKernels.MulF32, n, Ptr(x), Ptr(x), Ptr(squares), U32(n));
        LaunchGrid(PtxKernels.SumF32, (uint)SquareBlocks(n), Block, 0, [Ptr(squares), Ptr(partials), U32(n), F32(1f)]);
    }
}
