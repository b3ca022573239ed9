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
        int ldb = g.TransB ? g.K : g.N;
        int lda = g.TransA ? g.M : g.K;
        Api.SgemmStridedBatched(g.TransB, g.TransA, g.N, g.M, g.K, g.Alpha,
            P(b, g.OffsetB), Math.Max(1, ldb), g.StrideB,
            P(a, g.OffsetA), Math.Max(1, lda), g.StrideA,
            g.Beta, P(c, g.OffsetC), g.N, g.StrideC, g.Batch, AllowTf32);
    }
}
