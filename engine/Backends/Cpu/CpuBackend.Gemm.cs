using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using Sbp.Memory;
using Sbp.Tensors;

namespace Sbp.Backends.Cpu;

public sealed unsafe partial class CpuBackend
{
    /// <summary>
    /// Row-major strided batched GEMM. A transposed A is first packed into row-major [M, K]
    /// (workspace from the pool), so each row of C is either a sum of scaled rows of B
    /// (C[i,:] += A[i,k] * B[k,:]) or, for a transposed B, a row of dot products with B's rows.
    /// Parallel over the rows of all batch entries.
    /// </summary>
    public void Gemm(in GemmSpec g, Tensor a, Tensor b, Tensor c)
    {
        var spec = g;
        if (spec.M == 0 || spec.N == 0 || spec.Batch == 0) return;
        Tensor? packed = null;
        nint pa = a.Pointer + (nint)(spec.OffsetA * 4);
        long strideA = spec.StrideA;
        if (spec.TransA && spec.K > 0)
        {
            int batches = spec.StrideA == 0 ? 1 : spec.Batch;
            packed = Tensor.Empty(new Shape(batches, spec.M, spec.K), a.Device, DType.Float32, MemoryCategory.Workspace);
            packed.DetachFromScope();
            nint src = pa, dst = packed.Pointer;
            int m = spec.M, k = spec.K;
            long sA = spec.StrideA;
            CpuLoops.For(batches * (long)m, k, (s, e) =>
            {
                for (long r = s; r < e; r++)
                {
                    long bi = r / m, i = r % m;
                    float* from = (float*)src + bi * sA + i;
                    float* to = (float*)dst + r * k;
                    for (int kk = 0; kk < k; kk++) to[kk] = from[(long)kk * m];
                }
            });
            pa = dst;
            strideA = spec.StrideA == 0 ? 0 : (long)m * k;
        }
        try
        {
            nint pb = b.Pointer + (nint)(spec.OffsetB * 4), pc = c.Pointer + (nint)(spec.OffsetC * 4);
            long rows = (long)spec.Batch * spec.M;
            CpuLoops.For(rows, (long)spec.N * spec.K, (s, e) =>
            {
                for (long r = s; r < e; r++)
                {
                    long bi = r / spec.M, i = r % spec.M;
                    float* arow = (float*)pa + bi * strideA + i * spec.K;
                    float* bmat = (float*)pb + bi * spec.StrideB;
                    var crow = new Span<float>((float*)pc + bi * spec.StrideC + i * spec.N, spec.N);
                    GemmRow(spec, arow, bmat, crow);
                }
            });
        }
        finally
        {
            packed?.Dispose();
        }
    }

    static void GemmRow(in GemmSpec spec, float* arow, float* bmat, Span<float> crow)
    {
        int n = spec.N, k = spec.K;
        if (spec.TransB)
        {
            var av = new ReadOnlySpan<float>(arow, k);
            for (int j = 0; j < n; j++)
            {
                float dot = k == 0 ? 0f : TensorPrimitives.Dot(av, new ReadOnlySpan<float>(bmat + (long)j * k, k));
                crow[j] = spec.Beta == 0f ? spec.Alpha * dot : spec.Alpha * dot + spec.Beta * crow[j];
            }
            return;
        }
        if (spec.Beta == 0f) crow.Clear();
        else if (spec.Beta != 1f) TensorPrimitives.Multiply(crow, spec.Beta, crow);
        for (int kk = 0; kk < k; kk++)
        {
            float s = spec.Alpha * arow[kk];
            TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(bmat + (long)kk * n, n), s, crow, crow);
        }
    }
}
