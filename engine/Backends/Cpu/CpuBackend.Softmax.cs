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

    /// <summary>
    /// softmax: dx = y * (dy - sum(dy * y)); log-softmax: dx = dy - exp(y) * sum(dy).
    /// </summary>
    public void SoftmaxBackward(Tensor y, Tensor dy, Tensor dx, int dim, bool log)
    {
        var (outer, n, inner) = Split(y.Shape, dim);
        nint py = y.Pointer, pg = dy.Pointer, pd = dx.Pointer;
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
