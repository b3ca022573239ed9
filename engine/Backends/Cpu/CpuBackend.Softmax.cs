using System.Runtime.Intrinsics;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using Sbp.Tensors;

namespace Sbp.Backends.Cpu;

public sealed unsafe partial class CpuBackend
{
    /// <summary>Softmax along dim, max-subtracted; a row is contiguous when dim is the last axis, strided otherwise.</summary>
    public void Softmax(Tensor x, Tensor y, int dim, bool log)
    {
        var (outer, n, inner) = Geometry.Split(x.Shape, dim);
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
                    fixed (float* pe = exp)
                    {
                        CpuMath.Exp((float*)py + r * n, pe, n);
                        TensorPrimitives.Subtract(ys, (float)Math.Log(CpuMath.Sum(pe, n)), ys);
                    }
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
                    fixed (float* pr = row) CpuMath.Exp(pr, pr, n);
                    float inv = 1f / TensorPrimitives.Sum(row);
                    for (int j = 0; j < n; j++) ys[j * inner] = row[j] * inv;
                }
            }
        });
    }

    /// <summary>y = softmax(x) on one contiguous row of n (y may be x): max-subtracted, then exp and normalize.</summary>
    static void SoftmaxRow(float* x, float* y, int n)
    {
        float max = TensorPrimitives.Max(new ReadOnlySpan<float>(x, n));
        if (!Vector256.IsHardwareAccelerated)
        {
            var ys = new Span<float>(y, n);
            TensorPrimitives.Subtract(new ReadOnlySpan<float>(x, n), max, ys);
            TensorPrimitives.Exp(ys, ys);
            TensorPrimitives.Multiply(ys, 1f / TensorPrimitives.Sum(ys), ys);
            return;
        }
        // One pass for exp(x - max) and its sum (CpuMath.Exp; the tail padded with -inf, whose exp is 0),
        // one for the scale: attention's rows are short.
        var m = Vector256.Create(max);
        var acc = Vector256<float>.Zero;
        int j = 0;
        for (; j + 8 <= n; j += 8)
        {
            var e = CpuMath.Exp(Vector256.Load(x + j) - m);
            e.Store(y + j);
            acc += e;
        }
        if (j < n)
        {
            var e = CpuMath.Exp(CpuMath.Tail(x + j, n - j, float.NegativeInfinity) - m);
            for (int t = 0; j + t < n; t++) y[j + t] = e[t];
            acc += e;
        }
        float inv = 1f / Vector256.Sum(acc);
        var scale = Vector256.Create(inv);
        for (j = 0; j + 8 <= n; j += 8) (Vector256.Load(y + j) * scale).Store(y + j);
        for (; j < n; j++) y[j] *= inv;
    }

    /// <summary>dx = y * (dy - sum(dy * y)) on one contiguous row (the sum in float64; dx may alias dy).</summary>
    static void SoftmaxBackwardRow(float* y, float* dy, float* dx, int n)
    {
        float dot = (float)CpuMath.Dot(dy, y, n);
        var d = new Span<float>(dx, n);
        TensorPrimitives.Subtract(new ReadOnlySpan<float>(dy, n), dot, d);
        TensorPrimitives.Multiply(d, new ReadOnlySpan<float>(y, n), d);
    }

    /// <summary>
    /// softmax: dx = y * (dy - sum(dy * y)); log-softmax: dx = dy - exp(y) * sum(dy).
    /// </summary>
    public void SoftmaxBackward(Tensor y, Tensor dy, Tensor dx, int dim, bool log)
    {
        var (outer, n, inner) = Geometry.Split(y.Shape, dim);
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
                        CpuMath.Exp(ys, ds, n);
                        TensorPrimitives.MultiplyAdd(d, -sum, g, d);
                    }
                    else SoftmaxBackwardRow(ys, gs, ds, n);
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
