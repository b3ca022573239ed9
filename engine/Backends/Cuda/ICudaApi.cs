namespace Sbp.Backends.Cuda;

/// <summary>
/// The seam between the CUDA backend and the NVIDIA libraries: every driver, cuBLAS and cuDNN call
/// the backend makes, at the level of the libraries' own semantics (device addresses, column-major
/// GEMM with leading dimensions, NCDHW descriptors). <see cref="NativeCudaApi"/> implements it with
/// the bindings; the simulated device (kernels/Sbp.CudaSim) implements it over host memory, the PTX
/// simulator and reference implementations, so CI runs the whole backend without a GPU.
/// Failures throw <see cref="CudaException"/> naming the library status and the op
/// (<see cref="Sbp.Memory.OpLabel.Current"/>). One stream: calls are ordered.
/// </summary>
internal interface ICudaApi : IDisposable
{
    /// <summary>e.g. "NVIDIA H200 (sm_90, driver 13.0)" or "simulated".</summary>
    string Description { get; }

    // ---- memory (device addresses are 64-bit; 0 is never a valid allocation) ----
    /// <summary>Device memory, or 0 when the device is out of memory.</summary>
    ulong Allocate(long bytes);
    void Free(ulong address);
    (long Free, long Total) MemoryInfo();
    /// <summary>Returns as soon as <paramref name="source"/> may be reused; the copy is ordered on the stream and the host never waits
    /// for the device (the real device stages it through pinned memory: <see cref="StagingRing"/>).</summary>
    unsafe void CopyHostToDevice(ulong destination, void* source, long bytes);
    /// <summary>Waits for the stream (everything queued before), then copies.</summary>
    unsafe void CopyDeviceToHost(void* destination, ulong source, long bytes);
    void CopyDeviceToDevice(ulong destination, ulong source, long bytes);
    /// <summary>Sets count 32-bit words at destination to value.</summary>
    void Memset32(ulong destination, uint value, long count);

    // ---- kernels ----
    /// <summary>Loads a PTX module (NUL-free text); returns a handle for <see cref="GetFunction"/>.</summary>
    nint LoadModule(string name, string ptx);
    nint GetFunction(nint module, string entry);
    /// <summary>A 1-D launch on the device's stream.</summary>
    void Launch(nint function, string entry, uint grid, uint block, uint sharedBytes, ReadOnlySpan<CudaArg> args);
    /// <summary>Waits for all work on the stream.</summary>
    void Synchronize();

    // ---- events ----
    nint CreateEvent();
    void RecordEvent(nint evt);
    /// <summary>Milliseconds between two recorded events (waits for the second).</summary>
    float ElapsedMilliseconds(nint start, nint end);
    void DestroyEvent(nint evt);
    /// <summary>cuEventQuery: true once the work before the event's record has completed; never blocks.</summary>
    bool EventCompleted(nint evt);

    // ---- the communication stream (NCCL collectives) ----
    /// <summary>
    /// Makes the device current on the calling thread (NCCL takes the CUDA runtime's current device) and returns the
    /// communication stream (a CUstream, the same handle as a cudaStream_t), created on first use, after making it wait
    /// for all work issued so far on the compute stream. Collectives wait there for the other ranks, so a host copy
    /// (which waits for the compute stream) never waits for a lost rank.
    /// </summary>
    nint CommunicationStream();
    /// <summary>Records <paramref name="evt"/> on the communication stream (then <see cref="EventCompleted"/> says when a collective is done).</summary>
    void RecordCommunicationEvent(nint evt);

    // ---- cuBLAS (column-major, cublasSgemmStridedBatched semantics; alpha/beta on the host) ----
    /// <summary>tf32: cublasGemmStridedBatchedEx with CUBLAS_COMPUTE_32F_FAST_TF32 (tensor cores, 10-bit mantissa inputs).</summary>
    void SgemmStridedBatched(bool transA, bool transB, int m, int n, int k, float alpha,
        ulong a, int lda, long strideA, ulong b, int ldb, long strideB, float beta, ulong c, int ldc, long strideC, int batch, bool tf32);
    /// <summary>
    /// cublasGemmStridedBatchedEx on 16-bit A and B of <paramref name="abType"/> (BFloat16 or Float16: tensor cores) with
    /// CUBLAS_COMPUTE_32F (Float32 accumulation); C is <paramref name="cType"/>: Float32 or the inputs' type.
    /// </summary>
    void GemmHalfStridedBatched(bool transA, bool transB, int m, int n, int k, float alpha, Tensors.DType abType,
        ulong a, int lda, long strideA, ulong b, int ldb, long strideB, float beta, Tensors.DType cType, ulong c, int ldc, long strideC, int batch);

    // ---- cuDNN (float32, fully packed NCDHW tensors) ----
    /// <summary>The v7 heuristics' candidates for a convolution, best first (cudnnGetConvolution*Algorithm_v7 with each usable
    /// one's cudnnGetConvolution*WorkspaceSize); the backend chooses among them.</summary>
    IReadOnlyList<ConvCandidate> ConvolutionCandidates(ConvDirection direction, ConvDescriptor descriptor);
    void ConvolutionForward(ConvDescriptor d, ConvAlgorithm algo, ulong x, ulong w, ulong y, ulong workspace);
    void ConvolutionBackwardData(ConvDescriptor d, ConvAlgorithm algo, ulong w, ulong dy, ulong dx, ulong workspace);
    void ConvolutionBackwardFilter(ConvDescriptor d, ConvAlgorithm algo, ulong x, ulong dy, ulong dw, ulong workspace);

    /// <summary>cudnnBatchNormalizationForwardTraining, SPATIAL mode over x [N, C, S, 1]; running stats may be 0 (both).</summary>
    void BatchNormForwardTraining(int[] xDims, ulong x, ulong y, ulong scale, ulong bias, double averageFactor,
        ulong runningMean, ulong runningVar, double eps, ulong saveMean, ulong saveInvVar);
    /// <summary>cudnnBatchNormalizationBackward, SPATIAL mode; dx, dScale and dBias are all written.</summary>
    void BatchNormBackward(int[] xDims, ulong x, ulong dy, ulong dx, ulong scale, ulong dScale, ulong dBias,
        double eps, ulong saveMean, ulong saveInvVar);

    void PoolingForward(PoolDescriptor d, ulong x, ulong y);
    void PoolingBackward(PoolDescriptor d, ulong y, ulong dy, ulong x, ulong dx);
}

/// <summary>One kernel argument, by PTX parameter class (the simulator checks the class; the driver gets the bytes).</summary>
internal readonly record struct CudaArg(CudaArgKind Kind, ulong Bits, byte[]? Data = null)
{
    /// <summary>A byte-array parameter (<c>.param .align 4 .b8 name[N]</c>), passed by value: exactly N bytes.</summary>
    public static CudaArg Bytes(byte[] data) => new(CudaArgKind.Bytes, 0, data);
    public static CudaArg Ptr(ulong address) => new(CudaArgKind.Int64, address);
    public static CudaArg U64(ulong value) => new(CudaArgKind.Int64, value);
    public static CudaArg U32(long value) => new(CudaArgKind.Int32, checked((uint)value));
    public static CudaArg S32(int value) => new(CudaArgKind.Int32, unchecked((uint)value));
    public static CudaArg F32(float value) => new(CudaArgKind.Float32, BitConverter.SingleToUInt32Bits(value));
}

internal enum CudaArgKind { Int32, Int64, Float32, Bytes }

internal enum ConvDirection { Forward, BackwardData, BackwardFilter }

/// <summary>A cuDNN algorithm (the enum value of its direction) and the workspace it needs.</summary>
internal readonly record struct ConvAlgorithm(int Algo, long WorkspaceBytes);

/// <summary>One of the heuristics' algorithms: usable (CUDNN_STATUS_SUCCESS), deterministic, and the workspace it needs.</summary>
internal readonly record struct ConvCandidate(int Algo, bool Usable, bool Deterministic, long WorkspaceBytes);
