using System.Runtime.Intrinsics;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using Sbp.Tensors;

namespace Sbp.Backends.Cpu;

public sealed unsafe partial class CpuBackend
{
    /// <summary>Softmax along dim, max-subtracted; a row is contiguous when dim is the last axis, strided otherwise.</summary>
    public void Softmax(Tensor x, Tensor y, int dim, bool log)
    {
        var (outer, n, inner) = Split(x.Shape, dim);
        nint px = x.Pointer, py = y.Pointer;
        if (inner == 1)
        {
            // Contiguous rows (the last axis, as attention's): vector ops straight on x and y.
            CpuLoops.For(outer, 4L * n, (s, e) =>
            {
                var exp = log ? new float[n] : null;
                for (long r = s; r < e; r++)
                {
                    if (!log)
                    {
                        SoftmaxRow((float*)px + r * n, (float*)py + r * n, n);
                        continue;
                    }
                    var xs = new ReadOnlySpan<float>((float*)px + r * n, n);
                    var ys = new Span<float>((float*)py + r * n, n);
                    TensorPrimitives.Subtract(xs, TensorPrimitives.Max(xs), ys);
                    TensorPrimitives.Exp(ys, exp);
                    fixed (float* pe = exp) TensorPrimitives.Subtract(ys, (float)Math.Log(CpuMath.Sum(pe, n)), ys);
                }
            });
            return;
        }
        CpuLoops.For(outer * inner, 4L * n, (s, e) =>
        {
            var row = new float[n];
            for (long r = s; r < e; r++)
            {
                long o = r / inner, i = r % inner;
                float* xs = (float*)px + o * n * inner + i;
                float* ys = (float*)py + o * n * inner + i;
                for (int j = 0; j < n; j++) row[j] = xs[j * inner];
                float max = TensorPrimitives.Max(row);
                TensorPrimitives.Subtract(row, max, row);
                if (log)
                {
                    double sum = 0;
                    foreach (var v in row) sum += Math.Exp(v);
                    float lse = (float)Math.Log(sum);
                    for (int j = 0; j < n; j++) ys[j * inner] = row[j] - lse;
                }
                else
                {
                    TensorPrimitives.Exp(row, row);
                    float inv = 1f / TensorPrimitives.Sum(row);
                    for (int j = 0; j < n; j++) ys[j * inner] = row[j] * inv;
                }
            }
        });
    }

    /// <summary>y = softmax(x) on one contiguous row of n (y may be x): max-subtracted, then exp and normalize.</summary>
    static void SoftmaxRow(float* x, float* y, int n)
    {
        var xs = new ReadOnlySpan<float>(x, n);
        var ys = new Span<float>(y, n);
        TensorPrimitives.Subtract(xs, TensorPrimitives.Max(xs), ys);
        if (n >= 8 && n % 8 == 0 && Vector256.IsHardwareAccelerated) ExpNormalizeRow(y, n);
        else
        {
            TensorPrimitives.Exp(ys, ys);
            TensorPrimitives.Multiply(ys, 1f / TensorPrimitives.Sum(ys), ys);
        }
    }

    /// <summary>
    /// y = exp(y) / sum(exp(y)) on one row of max-subtracted values, n a multiple of 8: one pass for
    /// exp and the sum, one for the scale (attention's rows are short).
    /// </summary>
    static void ExpNormalizeRow(float* y, int n)
    {
        var acc = Vector256<float>.Zero;
        for (int j = 0; j < n; j += 8)
        {
            var e = Vector256.Exp(Vector256.Load(y + j));
            e.Store(y + j);
            acc += e;
        }
        var inv = Vector256.Create(1f / Vector256.Sum(acc));
        for (int j = 0; j < n; j += 8) (Vector256.Load(y + j) * inv).Store(y + j);
    }

    /// <summary>
    /// softmax: dx = y * (dy - sum(dy * y)); log-softmax: dx = dy - exp(y) * sum(dy).
    /// </summary>
    public void SoftmaxBackward(Tensor y, Tensor dy, Tensor dx, int dim, bool log)
    {
        var (outer, n, inner) = Split(y.Shape, dim);
        nint py = y.Pointer, pg = dy.Pointer, pd = dx.Pointer;
        if (inner == 1)
        {
            // Contiguous rows: the same formulas with float64 sums over 4 lanes and vector updates.
            CpuLoops.For(outer, 4L * n, (s, e) =>
            {
                for (long r = s; r < e; r++)
                {
                    float* ys = (float*)py + r * n, gs = (float*)pg + r * n, ds = (float*)pd + r * n;
                    var d = new Span<float>(ds, n);
                    var g = new ReadOnlySpan<float>(gs, n);
                    if (log)
                    {
                        float sum = (float)CpuMath.Sum(gs, n);
                        TensorPrimitives.Exp(new ReadOnlySpan<float>(ys, n), d);
                        TensorPrimitives.MultiplyAdd(d, -sum, g, d);
                    }
                    else
                    {
                        float dot = (float)CpuMath.Dot(gs, ys, n);
                        TensorPrimitives.Subtract(g, dot, d);
                        TensorPrimitives.Multiply(d, new ReadOnlySpan<float>(ys, n), d);
                    }
                }
            });
            return;
        }
        CpuLoops.For(outer * inner, 4L * n, (s, e) =>
        {
            for (long r = s; r < e; r++)
            {
                long o = r / inner, i = r % inner, b = o * n * inner + i;
                float* ys = (float*)py + b, gs = (float*)pg + b, ds = (float*)pd + b;
                double acc = 0;
                if (log)
                {
                    for (int j = 0; j < n; j++) acc += gs[j * inner];
                    for (int j = 0; j < n; j++) ds[j * inner] = gs[j * inner] - MathF.Exp(ys[j * inner]) * (float)acc;
                }
                else
                {
                    for (int j = 0; j < n; j++) acc += (double)gs[j * inner] * ys[j * inner];
                    for (int j = 0; j < n; j++) ds[j * inner] = ys[j * inner] * (gs[j * inner] - (float)acc);
                }
            }
        });
    }
}
