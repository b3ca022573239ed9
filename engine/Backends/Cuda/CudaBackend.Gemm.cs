using Sbp.Tensors;

namespace Sbp.Backends.Cuda;

public sealed partial class CudaBackend
{
    /// <summary>
    /// Lets cuBLAS and cuDNN use TF32 tensor cores for float32 GEMMs and convolutions (about 1e-3
    /// relative error, like PyTorch's allow_tf32). Off by default: results then match the CPU backend
    /// to float32 rounding.
    /// </summary>
    public bool AllowTf32 { get; set; }

    /// <summary>
    /// Row-major C = op(A) op(B) through column-major cuBLAS: a row-major [r, c] matrix is a
    /// column-major [c, r] one with the same leading dimension, so C^T = op(B)^T op(A)^T is one
    /// column-major GEMM with the operands swapped: m = N, n = M, A' = B, B' = A, ldc = N.
    /// Row-major B is [K, N] (ld N, op N) or, transposed, [N, K] (ld K, op T); likewise A.
    /// </summary>
    public void Gemm(in GemmSpec g, Tensor a, Tensor b, Tensor c)
    {
        if (g.M == 0 || g.N == 0 || g.Batch == 0) return;
        GemmSpec.CheckTypes(a, b, c);
        int ldb = g.TransB ? g.K : g.N;
        int lda = g.TransA ? g.M : g.K;
        var spec = g;
        if (a.DType != b.DType)
        {
            // a Float32 operand beside a 16-bit one: rounded into a 16-bit temporary (GemmEx takes one operand type)
            var (wide, low) = a.DType.Is16Bit() ? (b, a.DType) : (a, b.DType);
            using var rounded = Tensor.Empty(wide.Shape, wide.Device, low).DetachFromScope();
            Cast(wide, rounded);
            Gemm(g, ReferenceEquals(wide, a) ? rounded : a, ReferenceEquals(wide, b) ? rounded : b, c);
            return;
        }
        if (a.DType.Is16Bit())
        {
            // 16-bit A and B on tensor cores, Float32 accumulation; C Float32 or 16-bit (cuBLAS GemmEx, CUBLAS_COMPUTE_32F)
            DType ab = a.DType, ct = c.DType;
            Action half = () => Api.GemmHalfStridedBatched(spec.TransB, spec.TransA, spec.N, spec.M, spec.K, spec.Alpha, ab,
                P(b, spec.OffsetB), Math.Max(1, ldb), spec.StrideB, P(a, spec.OffsetA), Math.Max(1, lda), spec.StrideA,
                spec.Beta, ct, P(c, spec.OffsetC), spec.N, spec.StrideC, spec.Batch);
            RunGemm(half, c);
            return;
        }
        void Run() => Api.SgemmStridedBatched(spec.TransB, spec.TransA, spec.N, spec.M, spec.K, spec.Alpha,
            P(b, spec.OffsetB), Math.Max(1, ldb), spec.StrideB,
            P(a, spec.OffsetA), Math.Max(1, lda), spec.StrideA,
            spec.Beta, P(c, spec.OffsetC), spec.N, spec.StrideC, spec.Batch, AllowTf32);
        RunGemm(Run, c);
    }

    static void RunGemm(Action run, Tensor c)
    {
        try
        {
            run();
        }
        catch (CudaException e) when (e.ErrorName is "CUBLAS_STATUS_ALLOC_FAILED")
        {
            // cuBLAS allocates its workspace itself, outside the pool: the pool's cached free blocks may hold the memory it
            // needs. Release them and try once more; a second failure is the device truly full.
            c.Device.Pool.EmptyCache();
            run();
        }
    }
}
