using System.Runtime.InteropServices;

namespace Sbp.Backends.Cuda.Interop;

/// <summary>
/// CUDA driver API (libcuda.so.1), the exact exports of docs/CUDA-BINDINGS.md section 1: the <c>_v2</c>
/// names where cuda.h maps to them (the unsuffixed ones are the old 32-bit ABI), explicit streams
/// (no <c>_ptds</c>). Every function returns a <see cref="CuResult"/>; <see cref="CudaErrors"/> turns
/// a failure into a <see cref="CudaException"/>. Optional exports (cuEventElapsedTime_v2, new in
/// 12.8) are resolved by <see cref="NativeCudaApi"/> through function pointers instead.
/// </summary>
internal static unsafe partial class CuDriver
{
    internal const string Lib = CudaLibraries.Driver;

    [LibraryImport(Lib, EntryPoint = "cuInit")] internal static partial CuResult Init(uint flags);
    [LibraryImport(Lib, EntryPoint = "cuDriverGetVersion")] internal static partial CuResult DriverGetVersion(out int version);
    [LibraryImport(Lib, EntryPoint = "cuDeviceGet")] internal static partial CuResult DeviceGet(out int device, int ordinal);
    [LibraryImport(Lib, EntryPoint = "cuDeviceGetCount")] internal static partial CuResult DeviceGetCount(out int count);
    [LibraryImport(Lib, EntryPoint = "cuDeviceGetName")] internal static partial CuResult DeviceGetName(byte* name, int length, int device);
    [LibraryImport(Lib, EntryPoint = "cuDeviceGetAttribute")] internal static partial CuResult DeviceGetAttribute(out int value, int attribute, int device);
    [LibraryImport(Lib, EntryPoint = "cuDeviceTotalMem_v2")] internal static partial CuResult DeviceTotalMem(out nuint bytes, int device);
    [LibraryImport(Lib, EntryPoint = "cuDevicePrimaryCtxRetain")] internal static partial CuResult DevicePrimaryCtxRetain(out nint context, int device);
    [LibraryImport(Lib, EntryPoint = "cuDevicePrimaryCtxRelease_v2")] internal static partial CuResult DevicePrimaryCtxRelease(int device);
    [LibraryImport(Lib, EntryPoint = "cuCtxSetCurrent")] internal static partial CuResult CtxSetCurrent(nint context);
    [LibraryImport(Lib, EntryPoint = "cuCtxGetCurrent")] internal static partial CuResult CtxGetCurrent(out nint context);
    [LibraryImport(Lib, EntryPoint = "cuCtxSynchronize")] internal static partial CuResult CtxSynchronize();

    [LibraryImport(Lib, EntryPoint = "cuMemAlloc_v2")] internal static partial CuResult MemAlloc(out ulong pointer, nuint bytes);
    [LibraryImport(Lib, EntryPoint = "cuMemFree_v2")] internal static partial CuResult MemFree(ulong pointer);
    [LibraryImport(Lib, EntryPoint = "cuMemAllocAsync")] internal static partial CuResult MemAllocAsync(out ulong pointer, nuint bytes, nint stream);
    [LibraryImport(Lib, EntryPoint = "cuMemFreeAsync")] internal static partial CuResult MemFreeAsync(ulong pointer, nint stream);
    [LibraryImport(Lib, EntryPoint = "cuMemGetInfo_v2")] internal static partial CuResult MemGetInfo(out nuint free, out nuint total);
    [LibraryImport(Lib, EntryPoint = "cuMemcpyHtoD_v2")] internal static partial CuResult MemcpyHtoD(ulong dst, void* src, nuint bytes);
    [LibraryImport(Lib, EntryPoint = "cuMemcpyDtoH_v2")] internal static partial CuResult MemcpyDtoH(void* dst, ulong src, nuint bytes);
    [LibraryImport(Lib, EntryPoint = "cuMemcpyDtoD_v2")] internal static partial CuResult MemcpyDtoD(ulong dst, ulong src, nuint bytes);
    [LibraryImport(Lib, EntryPoint = "cuMemcpyHtoDAsync_v2")] internal static partial CuResult MemcpyHtoDAsync(ulong dst, void* src, nuint bytes, nint stream);
    [LibraryImport(Lib, EntryPoint = "cuMemcpyDtoHAsync_v2")] internal static partial CuResult MemcpyDtoHAsync(void* dst, ulong src, nuint bytes, nint stream);
    [LibraryImport(Lib, EntryPoint = "cuMemcpyDtoDAsync_v2")] internal static partial CuResult MemcpyDtoDAsync(ulong dst, ulong src, nuint bytes, nint stream);
    [LibraryImport(Lib, EntryPoint = "cuMemsetD32_v2")] internal static partial CuResult MemsetD32(ulong dst, uint value, nuint count);
    [LibraryImport(Lib, EntryPoint = "cuMemsetD8_v2")] internal static partial CuResult MemsetD8(ulong dst, byte value, nuint count);
    [LibraryImport(Lib, EntryPoint = "cuMemsetD32Async")] internal static partial CuResult MemsetD32Async(ulong dst, uint value, nuint count, nint stream);
    [LibraryImport(Lib, EntryPoint = "cuMemsetD8Async")] internal static partial CuResult MemsetD8Async(ulong dst, byte value, nuint count, nint stream);
    [LibraryImport(Lib, EntryPoint = "cuMemHostAlloc")] internal static partial CuResult MemHostAlloc(out nint pointer, nuint bytes, uint flags);
    [LibraryImport(Lib, EntryPoint = "cuMemAllocHost_v2")] internal static partial CuResult MemAllocHost(out nint pointer, nuint bytes);
    [LibraryImport(Lib, EntryPoint = "cuMemFreeHost")] internal static partial CuResult MemFreeHost(nint pointer);

    [LibraryImport(Lib, EntryPoint = "cuModuleLoadData")] internal static partial CuResult ModuleLoadData(out nint module, void* image);
    [LibraryImport(Lib, EntryPoint = "cuModuleLoadDataEx")] internal static partial CuResult ModuleLoadDataEx(out nint module, void* image, uint optionCount, int* options, void** optionValues);
    [LibraryImport(Lib, EntryPoint = "cuModuleGetFunction", StringMarshalling = StringMarshalling.Utf8)] internal static partial CuResult ModuleGetFunction(out nint function, nint module, string name);
    [LibraryImport(Lib, EntryPoint = "cuModuleUnload")] internal static partial CuResult ModuleUnload(nint module);
    [LibraryImport(Lib, EntryPoint = "cuLaunchKernel")]
    internal static partial CuResult LaunchKernel(nint function, uint gridX, uint gridY, uint gridZ, uint blockX, uint blockY, uint blockZ,
        uint sharedBytes, nint stream, void** kernelParams, void** extra);
    [LibraryImport(Lib, EntryPoint = "cuFuncGetAttribute")] internal static partial CuResult FuncGetAttribute(out int value, int attribute, nint function);
    [LibraryImport(Lib, EntryPoint = "cuFuncSetAttribute")] internal static partial CuResult FuncSetAttribute(nint function, int attribute, int value);

    [LibraryImport(Lib, EntryPoint = "cuStreamCreate")] internal static partial CuResult StreamCreate(out nint stream, uint flags);
    [LibraryImport(Lib, EntryPoint = "cuStreamSynchronize")] internal static partial CuResult StreamSynchronize(nint stream);
    [LibraryImport(Lib, EntryPoint = "cuStreamDestroy_v2")] internal static partial CuResult StreamDestroy(nint stream);
    [LibraryImport(Lib, EntryPoint = "cuStreamWaitEvent")] internal static partial CuResult StreamWaitEvent(nint stream, nint evt, uint flags);
    [LibraryImport(Lib, EntryPoint = "cuEventCreate")] internal static partial CuResult EventCreate(out nint evt, uint flags);
    [LibraryImport(Lib, EntryPoint = "cuEventRecord")] internal static partial CuResult EventRecord(nint evt, nint stream);
    [LibraryImport(Lib, EntryPoint = "cuEventSynchronize")] internal static partial CuResult EventSynchronize(nint evt);
    [LibraryImport(Lib, EntryPoint = "cuEventQuery")] internal static partial CuResult EventQuery(nint evt);
    [LibraryImport(Lib, EntryPoint = "cuEventDestroy_v2")] internal static partial CuResult EventDestroy(nint evt);

    [LibraryImport(Lib, EntryPoint = "cuGetErrorName")] internal static partial CuResult GetErrorName(CuResult error, out nint name);
    [LibraryImport(Lib, EntryPoint = "cuGetErrorString")] internal static partial CuResult GetErrorString(CuResult error, out nint text);

    /// <summary>
    /// Exports resolved at run time rather than bound: cuEventElapsedTime_v2 (12.8+) with the plain
    /// name as the fallback for older drivers (Debian's 535 lacks _v2; the 13.0 header drops the plain name).
    /// </summary>
    internal static readonly string[] ElapsedTimeExports = ["cuEventElapsedTime_v2", "cuEventElapsedTime"];
}

/// <summary>CUresult values the engine names (docs/CUDA-BINDINGS.md section 1).</summary>
internal enum CuResult
{
    Success = 0,
    InvalidValue = 1,
    OutOfMemory = 2,
    NotInitialized = 3,
    Deinitialized = 4,
    StubLibrary = 34,
    NoDevice = 100,
    InvalidDevice = 101,
    InvalidImage = 200,
    InvalidContext = 201,
    NoBinaryForGpu = 209,
    InvalidPtx = 218,
    JitCompilerNotFound = 221,
    UnsupportedPtxVersion = 222,
    InvalidSource = 300,
    InvalidHandle = 400,
    NotFound = 500,
    NotReady = 600,
    IllegalAddress = 700,
    LaunchOutOfResources = 701,
    LaunchFailed = 719,
    SystemDriverMismatch = 803,
    Unknown = 999,
}

/// <summary>CU_JIT_* options used when loading PTX (error log buffer).</summary>
internal enum CuJitOption
{
    InfoLogBuffer = 3,
    InfoLogBufferSizeBytes = 4,
    ErrorLogBuffer = 5,
    ErrorLogBufferSizeBytes = 6,
}

/// <summary>CU_DEVICE_ATTRIBUTE_* values the engine reads.</summary>
internal enum CuDeviceAttribute
{
    MaxThreadsPerBlock = 1,
    MaxSharedMemoryPerBlock = 8,
    WarpSize = 10,
    MultiprocessorCount = 16,
    ComputeCapabilityMajor = 75,
    ComputeCapabilityMinor = 76,
}
