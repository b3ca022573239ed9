using System.Runtime.InteropServices;

namespace Sbp.Backends.Cuda.Interop;

/// <summary>
/// cuBLAS (libcublas.so.13 or .12, loaded after its libcublasLt by <see cref="CudaLibraries"/>): the
/// exported names cublas_api.h declares (the plain names are macros of cublas_v2.h). Column-major;
/// alpha and beta are host pointers (pointer mode HOST, the default).
/// </summary>
internal static unsafe partial class CuBlas
{
    internal const string Lib = CudaLibraries.Cublas;

    [LibraryImport(Lib, EntryPoint = "cublasCreate_v2")] internal static partial CublasStatus Create(out nint handle);
    [LibraryImport(Lib, EntryPoint = "cublasDestroy_v2")] internal static partial CublasStatus Destroy(nint handle);
    [LibraryImport(Lib, EntryPoint = "cublasSetStream_v2")] internal static partial CublasStatus SetStream(nint handle, nint stream);
    [LibraryImport(Lib, EntryPoint = "cublasSetMathMode")] internal static partial CublasStatus SetMathMode(nint handle, CublasMath mode);
    [LibraryImport(Lib, EntryPoint = "cublasGetMathMode")] internal static partial CublasStatus GetMathMode(nint handle, out CublasMath mode);
    [LibraryImport(Lib, EntryPoint = "cublasSetWorkspace_v2")] internal static partial CublasStatus SetWorkspace(nint handle, ulong workspace, nuint bytes);
    [LibraryImport(Lib, EntryPoint = "cublasSetPointerMode_v2")] internal static partial CublasStatus SetPointerMode(nint handle, int mode);
    [LibraryImport(Lib, EntryPoint = "cublasGetVersion_v2")] internal static partial CublasStatus GetVersion(nint handle, out int version);
    /// <summary>The CUDA runtime version cuBLAS is built with (13000 for 13.0); the loader reads it through the handle.</summary>
    [LibraryImport(Lib, EntryPoint = "cublasGetCudartVersion")] internal static partial nuint GetCudartVersion();
    [LibraryImport(Lib, EntryPoint = "cublasGetStatusName")] internal static partial nint GetStatusName(CublasStatus status);
    [LibraryImport(Lib, EntryPoint = "cublasGetStatusString")] internal static partial nint GetStatusString(CublasStatus status);

    [LibraryImport(Lib, EntryPoint = "cublasSgemm_v2")]
    internal static partial CublasStatus Sgemm(nint handle, CublasOperation transA, CublasOperation transB, int m, int n, int k,
        float* alpha, ulong a, int lda, ulong b, int ldb, float* beta, ulong c, int ldc);

    [LibraryImport(Lib, EntryPoint = "cublasSgemmStridedBatched")]
    internal static partial CublasStatus SgemmStridedBatched(nint handle, CublasOperation transA, CublasOperation transB, int m, int n, int k,
        float* alpha, ulong a, int lda, long strideA, ulong b, int ldb, long strideB, float* beta, ulong c, int ldc, long strideC, int batchCount);

    [LibraryImport(Lib, EntryPoint = "cublasGemmEx")]
    internal static partial CublasStatus GemmEx(nint handle, CublasOperation transA, CublasOperation transB, int m, int n, int k,
        void* alpha, ulong a, CudaDataType aType, int lda, ulong b, CudaDataType bType, int ldb, void* beta, ulong c, CudaDataType cType, int ldc,
        CublasComputeType computeType, CublasGemmAlgo algo);

    [LibraryImport(Lib, EntryPoint = "cublasGemmStridedBatchedEx")]
    internal static partial CublasStatus GemmStridedBatchedEx(nint handle, CublasOperation transA, CublasOperation transB, int m, int n, int k,
        void* alpha, ulong a, CudaDataType aType, int lda, long strideA, ulong b, CudaDataType bType, int ldb, long strideB,
        void* beta, ulong c, CudaDataType cType, int ldc, long strideC, int batchCount, CublasComputeType computeType, CublasGemmAlgo algo);
}

internal enum CublasStatus
{
    Success = 0,
    NotInitialized = 1,
    AllocFailed = 3,
    InvalidValue = 7,
    ArchMismatch = 8,
    MappingError = 11,
    ExecutionFailed = 13,
    InternalError = 14,
    NotSupported = 15,
    LicenseError = 16,
}

internal enum CublasOperation { N = 0, T = 1, C = 2 }

internal enum CublasMath { Default = 0, TensorOp = 1, Pedantic = 2, Tf32TensorOp = 3 }

internal enum CublasComputeType { Compute32F = 68, Compute32FPedantic = 69, Compute32FFastTf32 = 77 }

internal enum CudaDataType { R32F = 0, R16F = 2, R16BF = 14 }

internal enum CublasGemmAlgo { Default = -1 }
