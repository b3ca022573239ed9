using System.Runtime.InteropServices;

namespace Sbp.Backends.Cuda.Interop;

/// <summary>
/// cuDNN 9 legacy API through the shim libcudnn.so.9 (the sub-libraries are preloaded by
/// <see cref="CudaLibraries"/>, which refuses an incomplete install before any call: a missing
/// sub-library makes the shim abort the process). Many of these are marked deprecated in 9.0 but
/// are still exported (docs/CUDA-BINDINGS.md section 3). alpha/beta are host pointers to float.
/// </summary>
internal static unsafe partial class CuDnn
{
    internal const string Lib = CudaLibraries.Cudnn;

    [LibraryImport(Lib, EntryPoint = "cudnnCreate")] internal static partial CudnnStatus Create(out nint handle);
    [LibraryImport(Lib, EntryPoint = "cudnnDestroy")] internal static partial CudnnStatus Destroy(nint handle);
    [LibraryImport(Lib, EntryPoint = "cudnnSetStream")] internal static partial CudnnStatus SetStream(nint handle, nint stream);
    [LibraryImport(Lib, EntryPoint = "cudnnGetVersion")] internal static partial nuint GetVersion();
    /// <summary>The CUDA runtime version cuDNN is built with (12080 for 12.8); the loader reads it through the handle before any use.</summary>
    [LibraryImport(Lib, EntryPoint = "cudnnGetCudartVersion")] internal static partial nuint GetCudartVersion();
    [LibraryImport(Lib, EntryPoint = "cudnnGetErrorString")] internal static partial nint GetErrorString(CudnnStatus status);
    [LibraryImport(Lib, EntryPoint = "cudnnGetLastErrorString")] internal static partial void GetLastErrorString(byte* message, nuint max);

    [LibraryImport(Lib, EntryPoint = "cudnnCreateTensorDescriptor")] internal static partial CudnnStatus CreateTensorDescriptor(out nint desc);
    [LibraryImport(Lib, EntryPoint = "cudnnDestroyTensorDescriptor")] internal static partial CudnnStatus DestroyTensorDescriptor(nint desc);
    [LibraryImport(Lib, EntryPoint = "cudnnSetTensorNdDescriptor")] internal static partial CudnnStatus SetTensorNdDescriptor(nint desc, CudnnDataType type, int nbDims, int* dims, int* strides);
    [LibraryImport(Lib, EntryPoint = "cudnnSetTensor4dDescriptor")] internal static partial CudnnStatus SetTensor4dDescriptor(nint desc, int format, CudnnDataType type, int n, int c, int h, int w);

    [LibraryImport(Lib, EntryPoint = "cudnnCreateFilterDescriptor")] internal static partial CudnnStatus CreateFilterDescriptor(out nint desc);
    [LibraryImport(Lib, EntryPoint = "cudnnDestroyFilterDescriptor")] internal static partial CudnnStatus DestroyFilterDescriptor(nint desc);
    [LibraryImport(Lib, EntryPoint = "cudnnSetFilterNdDescriptor")] internal static partial CudnnStatus SetFilterNdDescriptor(nint desc, CudnnDataType type, int format, int nbDims, int* dims);

    [LibraryImport(Lib, EntryPoint = "cudnnCreateConvolutionDescriptor")] internal static partial CudnnStatus CreateConvolutionDescriptor(out nint desc);
    [LibraryImport(Lib, EntryPoint = "cudnnDestroyConvolutionDescriptor")] internal static partial CudnnStatus DestroyConvolutionDescriptor(nint desc);
    [LibraryImport(Lib, EntryPoint = "cudnnSetConvolutionNdDescriptor")]
    internal static partial CudnnStatus SetConvolutionNdDescriptor(nint desc, int arrayLength, int* pad, int* stride, int* dilation, int mode, CudnnDataType computeType);
    [LibraryImport(Lib, EntryPoint = "cudnnSetConvolutionMathType")] internal static partial CudnnStatus SetConvolutionMathType(nint desc, int mathType);
    [LibraryImport(Lib, EntryPoint = "cudnnSetConvolutionGroupCount")] internal static partial CudnnStatus SetConvolutionGroupCount(nint desc, int groups);

    [LibraryImport(Lib, EntryPoint = "cudnnGetConvolutionForwardAlgorithm_v7")]
    internal static partial CudnnStatus GetConvolutionForwardAlgorithm(nint h, nint x, nint w, nint conv, nint y, int requested, out int returned, CudnnAlgoPerf* perf);
    [LibraryImport(Lib, EntryPoint = "cudnnGetConvolutionBackwardDataAlgorithm_v7")]
    internal static partial CudnnStatus GetConvolutionBackwardDataAlgorithm(nint h, nint w, nint dy, nint conv, nint dx, int requested, out int returned, CudnnAlgoPerf* perf);
    [LibraryImport(Lib, EntryPoint = "cudnnGetConvolutionBackwardFilterAlgorithm_v7")]
    internal static partial CudnnStatus GetConvolutionBackwardFilterAlgorithm(nint h, nint x, nint dy, nint conv, nint dw, int requested, out int returned, CudnnAlgoPerf* perf);
    [LibraryImport(Lib, EntryPoint = "cudnnFindConvolutionForwardAlgorithm")]
    internal static partial CudnnStatus FindConvolutionForwardAlgorithm(nint h, nint x, nint w, nint conv, nint y, int requested, out int returned, CudnnAlgoPerf* perf);
    [LibraryImport(Lib, EntryPoint = "cudnnGetConvolutionForwardWorkspaceSize")]
    internal static partial CudnnStatus GetConvolutionForwardWorkspaceSize(nint h, nint x, nint w, nint conv, nint y, int algo, out nuint bytes);
    [LibraryImport(Lib, EntryPoint = "cudnnGetConvolutionBackwardDataWorkspaceSize")]
    internal static partial CudnnStatus GetConvolutionBackwardDataWorkspaceSize(nint h, nint w, nint dy, nint conv, nint dx, int algo, out nuint bytes);
    [LibraryImport(Lib, EntryPoint = "cudnnGetConvolutionBackwardFilterWorkspaceSize")]
    internal static partial CudnnStatus GetConvolutionBackwardFilterWorkspaceSize(nint h, nint x, nint dy, nint conv, nint dw, int algo, out nuint bytes);
    [LibraryImport(Lib, EntryPoint = "cudnnConvolutionForward")]
    internal static partial CudnnStatus ConvolutionForward(nint h, float* alpha, nint xDesc, ulong x, nint wDesc, ulong w, nint conv, int algo,
        ulong workspace, nuint workspaceBytes, float* beta, nint yDesc, ulong y);
    [LibraryImport(Lib, EntryPoint = "cudnnConvolutionBackwardData")]
    internal static partial CudnnStatus ConvolutionBackwardData(nint h, float* alpha, nint wDesc, ulong w, nint dyDesc, ulong dy, nint conv, int algo,
        ulong workspace, nuint workspaceBytes, float* beta, nint dxDesc, ulong dx);
    [LibraryImport(Lib, EntryPoint = "cudnnConvolutionBackwardFilter")]
    internal static partial CudnnStatus ConvolutionBackwardFilter(nint h, float* alpha, nint xDesc, ulong x, nint dyDesc, ulong dy, nint conv, int algo,
        ulong workspace, nuint workspaceBytes, float* beta, nint dwDesc, ulong dw);

    [LibraryImport(Lib, EntryPoint = "cudnnBatchNormalizationForwardTraining")]
    internal static partial CudnnStatus BatchNormalizationForwardTraining(nint h, int mode, float* alpha, float* beta, nint xDesc, ulong x,
        nint yDesc, ulong y, nint bnDesc, ulong scale, ulong bias, double expAverageFactor, ulong runningMean, ulong runningVar,
        double eps, ulong saveMean, ulong saveInvVar);
    [LibraryImport(Lib, EntryPoint = "cudnnBatchNormalizationForwardInference")]
    internal static partial CudnnStatus BatchNormalizationForwardInference(nint h, int mode, float* alpha, float* beta, nint xDesc, ulong x,
        nint yDesc, ulong y, nint bnDesc, ulong scale, ulong bias, ulong estimatedMean, ulong estimatedVar, double eps);
    [LibraryImport(Lib, EntryPoint = "cudnnBatchNormalizationBackward")]
    internal static partial CudnnStatus BatchNormalizationBackward(nint h, int mode, float* alphaData, float* betaData, float* alphaParams, float* betaParams,
        nint xDesc, ulong x, nint dyDesc, ulong dy, nint dxDesc, ulong dx, nint bnDesc, ulong scale, ulong dScale, ulong dBias,
        double eps, ulong saveMean, ulong saveInvVar);
    [LibraryImport(Lib, EntryPoint = "cudnnDeriveBNTensorDescriptor")] internal static partial CudnnStatus DeriveBNTensorDescriptor(nint bnDesc, nint xDesc, int mode);

    [LibraryImport(Lib, EntryPoint = "cudnnCreatePoolingDescriptor")] internal static partial CudnnStatus CreatePoolingDescriptor(out nint desc);
    [LibraryImport(Lib, EntryPoint = "cudnnDestroyPoolingDescriptor")] internal static partial CudnnStatus DestroyPoolingDescriptor(nint desc);
    [LibraryImport(Lib, EntryPoint = "cudnnSetPoolingNdDescriptor")]
    internal static partial CudnnStatus SetPoolingNdDescriptor(nint desc, int mode, int nanPropagation, int nbDims, int* window, int* pad, int* stride);
    [LibraryImport(Lib, EntryPoint = "cudnnPoolingForward")]
    internal static partial CudnnStatus PoolingForward(nint h, nint pool, float* alpha, nint xDesc, ulong x, float* beta, nint yDesc, ulong y);
    [LibraryImport(Lib, EntryPoint = "cudnnPoolingBackward")]
    internal static partial CudnnStatus PoolingBackward(nint h, nint pool, float* alpha, nint yDesc, ulong y, nint dyDesc, ulong dy,
        nint xDesc, ulong x, float* beta, nint dxDesc, ulong dx);
}

internal enum CudnnStatus
{
    Success = 0,
    NotInitialized = 1001,
    SublibraryVersionMismatch = 1002,
    Deprecated = 1004,
    LicenseError = 1005,
    SublibraryLoadingFailed = 1008,
    BadParam = 2000,
    InvalidValue = 2001,
    BadParamNullPointer = 2002,
    NotSupported = 3000,
    NotSupportedArchMismatch = 3007,
    InternalError = 4000,
    InternalErrorHostAllocationFailed = 4003,
    ExecutionFailed = 5000,
    ExecutionFailedCublas = 5002,
}

internal enum CudnnDataType { Float = 0, Half = 2, BFloat16 = 9 }

/// <summary>cudnnConvolution{Fwd,BwdData,BwdFilter}AlgoPerf_t (48 bytes on x64; the three have one layout).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct CudnnAlgoPerf
{
    public int Algo;
    public CudnnStatus Status;
    public float Time;
    public nuint Memory;
    public int Determinism;
    public int MathType;
    public int Reserved0, Reserved1, Reserved2;
}
