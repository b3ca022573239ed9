using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using Sbp.Tensors;

namespace Sbp.Backends.Cpu;

public sealed unsafe partial class CpuBackend
{
    public void CrossEntropyForward(Tensor logits, Tensor targets, Tensor? classWeights, float labelSmoothing, Tensor losses, Tensor logSumExp)
    {
        if (logits.DType.Is16Bit())
        {
            // autocast: 16-bit logits read as their exact widening
            using var wide = SixteenBitOperands.Widened(this, logits)!;
            CrossEntropyForward(wide, targets, classWeights, labelSmoothing, losses, logSumExp);
            return;
        }
        int n = logits.Shape[0], c = logits.Shape[1];
        CheckIndices(targets, c, CheckFailures.IndexOutOfRange("cross_entropy", c));
        nint pz = logits.Pointer, py = targets.Pointer, pl = losses.Pointer, ps = logSumExp.Pointer;
        nint pw = classWeights?.Pointer ?? 0;
        double eps = labelSmoothing;
        CpuLoops.For(n, 4L * c, (s, e) =>
        {
            for (long i = s; i < e; i++)
            {
                var z = new ReadOnlySpan<float>((float*)pz + i * c, c);
                float* w = (float*)pw;
                int y = ((int*)py)[i];
                double lse = LogSumExp(z);
                double wy = w == null ? 1.0 : w[y];
                double loss = (1 - eps) * wy * (lse - z[y]);
                if (eps != 0)
                {
                    double smooth = 0;
                    for (int k = 0; k < c; k++) smooth += (w == null ? 1.0 : w[k]) * (lse - z[k]);
                    loss += eps / c * smooth;
                }
                ((float*)pl)[i] = (float)loss;
                ((float*)ps)[i] = (float)lse;
            }
        });
    }

    public void CrossEntropyBackward(Tensor logits, Tensor targets, Tensor? classWeights, float labelSmoothing, Tensor logSumExp, Tensor rowGrad, Tensor dLogits)
    {
        if (logits.DType.Is16Bit())
        {
            using var wide = SixteenBitOperands.Widened(this, logits)!;
            CrossEntropyBackward(wide, targets, classWeights, labelSmoothing, logSumExp, rowGrad, dLogits);
            return;
        }
        int n = logits.Shape[0], c = logits.Shape[1];
        CheckIndices(targets, c, CheckFailures.IndexOutOfRange("cross_entropy.backward", c));
        nint pz = logits.Pointer, py = targets.Pointer, ps = logSumExp.Pointer, pg = rowGrad.Pointer, pd = dLogits.Pointer;
        nint pw = classWeights?.Pointer ?? 0;
        bool perRow = rowGrad.Numel == n && n != 1;
        float eps = labelSmoothing;
        float sumW = classWeights is null ? c : TensorPrimitives.Sum(new ReadOnlySpan<float>((float*)pw, c));
        CpuLoops.For(n, 4L * c, (s, e) =>
        {
            for (long i = s; i < e; i++)
            {
                float* z = (float*)pz + i * c, dz = (float*)pd + i * c, w = (float*)pw;
                int y = ((int*)py)[i];
                float g = ((float*)pg)[perRow ? i : 0];
                float lse = ((float*)ps)[i];
                float wy = w == null ? 1f : w[y];
                float total = (1 - eps) * wy + eps / c * sumW;   // sum_c q[i,c]
                float smooth = eps / c;
                for (int k = 0; k < c; k++)
                    dz[k] = g * (MathF.Exp(z[k] - lse) * total - smooth * (w == null ? 1f : w[k]));
                dz[y] -= g * (1 - eps) * wy;
            }
        });
    }

    static double LogSumExp(ReadOnlySpan<float> z)
    {
        if (z.Length == 0) return double.NegativeInfinity;
        float max = TensorPrimitives.Max(z);
        if (float.IsInfinity(max)) return max;
        double sum = 0;
        foreach (var v in z) sum += Math.Exp(v - max);
        return max + Math.Log(sum);
    }

    public void BceWithLogitsForward(Tensor logits, Tensor targets, Tensor? posWeight, Tensor losses)
    {
        nint px = logits.Pointer, pt = targets.Pointer, pl = losses.Pointer, pp = posWeight?.Pointer ?? 0;
        int last = logits.Rank == 0 ? 1 : logits.Shape[-1];
        bool onePw = posWeight is not null && posWeight.Numel == 1;
        CpuLoops.For(logits.Numel, 8, (s, e) =>
        {
            for (long i = s; i < e; i++)
            {
                double x = ((float*)px)[i], t = ((float*)pt)[i];
                double pw = pp == 0 ? 1.0 : ((float*)pp)[onePw ? 0 : i % last];
                double l = 1 + (pw - 1) * t;
                ((float*)pl)[i] = (float)((1 - t) * x + l * SoftplusNeg(x));
            }
        });
    }

    public void BceWithLogitsBackward(Tensor logits, Tensor targets, Tensor? posWeight, Tensor grad, Tensor? dLogits, Tensor? dTargets)
    {
        nint px = logits.Pointer, pt = targets.Pointer, pg = grad.Pointer, pp = posWeight?.Pointer ?? 0;
        nint pdx = dLogits?.Pointer ?? 0, pdt = dTargets?.Pointer ?? 0;
        int last = logits.Rank == 0 ? 1 : logits.Shape[-1];
        bool onePw = posWeight is not null && posWeight.Numel == 1;
        bool perElement = grad.Numel == logits.Numel && logits.Numel != 1;
        CpuLoops.For(logits.Numel, 8, (s, e) =>
        {
            for (long i = s; i < e; i++)
            {
                double x = ((float*)px)[i], t = ((float*)pt)[i];
                double g = ((float*)pg)[perElement ? i : 0];
                double pw = pp == 0 ? 1.0 : ((float*)pp)[onePw ? 0 : i % last];
                if (pdx != 0)
                {
                    // sigmoid(-x), stable on both sides.
                    double sNeg = x >= 0 ? Math.Exp(-x) / (1 + Math.Exp(-x)) : 1 / (1 + Math.Exp(x));
                    ((float*)pdx)[i] = (float)(g * ((1 - t) - (1 + (pw - 1) * t) * sNeg));
                }
                if (pdt != 0) ((float*)pdt)[i] = (float)(g * ((pw - 1) * SoftplusNeg(x) - x));
            }
        });
    }

    /// <summary>softplus(-x) = log(1 + exp(-x)), without overflow for large |x|.</summary>
    static double SoftplusNeg(double x) => Math.Log(1 + Math.Exp(-Math.Abs(x))) + Math.Max(-x, 0);
}
