using Sbp.Tensors;

namespace Sbp.Backends;

// Matrix products.
public partial interface IBackend
{
    /// <summary>
    /// C = alpha op(A) op(B) + beta C (row-major, strided batches). A and B are both Float32, or both of one 16-bit type
    /// (Float32 accumulation, cuBLAS GemmEx's CUBLAS_COMPUTE_32F); C is Float32 or A's 16-bit type (rounded to nearest even).
    /// </summary>
    void Gemm(in GemmSpec spec, Tensor a, Tensor b, Tensor c);
}
