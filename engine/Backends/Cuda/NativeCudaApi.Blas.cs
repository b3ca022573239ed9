using Sbp.Backends.Cuda.Interop;
using static Sbp.Backends.Cuda.Interop.CudaErrors;

namespace Sbp.Backends.Cuda;

// cuBLAS: the handle, Float32 (and TF32) GEMMs, and GEMMs on 16-bit operands with Float32 accumulation.
internal sealed unsafe partial class NativeCudaApi
{
    nint Blas()
    {
        Current();
        if (_cublas != 0) return _cublas;
        CudaLibraries.LoadCublas();
        Check(CuBlas.Create(out var h));
        Check(CuBlas.SetStream(h, _stream));
        // FP32 math as the CPU reference (TF32 would differ in the 4th digit); GemmEx with
        // COMPUTE_32F_FAST_TF32 is the opt-in for speed.
        Check(CuBlas.SetMathMode(h, CublasMath.Default));
        return _cublas = h;
    }

    public void SgemmStridedBatched(bool transA, bool transB, int m, int n, int k, float alpha,
        ulong a, int lda, long strideA, ulong b, int ldb, long strideB, float beta, ulong c, int ldc, long strideC, int batch, bool tf32)
    {
        var h = Blas();
        var ta = transA ? CublasOperation.T : CublasOperation.N;
        var tb = transB ? CublasOperation.T : CublasOperation.N;
        if (tf32)
            Check(CuBlas.GemmStridedBatchedEx(h, ta, tb, m, n, k, &alpha, a, CudaDataType.R32F, lda, strideA, b, CudaDataType.R32F, ldb, strideB,
                &beta, c, CudaDataType.R32F, ldc, strideC, batch, CublasComputeType.Compute32FFastTf32, CublasGemmAlgo.Default));
        else if (batch == 1)
            Check(CuBlas.Sgemm(h, ta, tb, m, n, k, &alpha, a, lda, b, ldb, &beta, c, ldc));
        else
            Check(CuBlas.SgemmStridedBatched(h, ta, tb, m, n, k, &alpha, a, lda, strideA, b, ldb, strideB, &beta, c, ldc, strideC, batch));
    }

    public void GemmHalfStridedBatched(bool transA, bool transB, int m, int n, int k, float alpha, Tensors.DType abType,
        ulong a, int lda, long strideA, ulong b, int ldb, long strideB, float beta, Tensors.DType cType, ulong c, int ldc, long strideC, int batch)
    {
        var h = Blas();
        static CudaDataType TypeOf(Tensors.DType t) => t switch
        {
            Tensors.DType.BFloat16 => CudaDataType.R16BF,
            Tensors.DType.Float16 => CudaDataType.R16F,
            _ => CudaDataType.R32F,
        };
        Check(CuBlas.GemmStridedBatchedEx(h, transA ? CublasOperation.T : CublasOperation.N, transB ? CublasOperation.T : CublasOperation.N, m, n, k,
            &alpha, a, TypeOf(abType), lda, strideA, b, TypeOf(abType), ldb, strideB, &beta, c, TypeOf(cType), ldc, strideC, batch,
            CublasComputeType.Compute32F, CublasGemmAlgo.Default));
    }
}
