using Sbp.Backends.Cuda;
using Sbp.Tensors;
using Sbp.Memory;

namespace Sbp.KernelProfile;

/// <summary>One kernel launch of a recorded step: entry, shape of the launch, arguments, and the op that made it.</summary>
public sealed record RecordedLaunch(string Entry, uint Grid, uint Block, uint SharedBytes, IReadOnlyList<(string Kind, ulong Bits)> Args, string Op, string Phase,
    int[]? Meta = null);

/// <summary>One cuBLAS / cuDNN call or copy of a recorded step: its work in FLOPs and bytes, and tiles for GEMM-like calls.</summary>
/// <summary>A library call's counts; <see cref="Half"/>: 16-bit inputs on tensor cores (the 16-bit rate), <see cref="Tf32"/>: TF32 tensor cores.</summary>
public sealed record RecordedCall(string Function, double Flops, double Bytes, long Tiles, bool Tf32, string Detail, string Op, string Phase, long K = 0, bool Half = false);

/// <summary>
/// A CUDA device that runs nothing: memory is address space only, launches and library calls are recorded with their
/// shapes (and the op and phase they belong to), copies count bytes, reads return zeros. A training step of a full-size
/// model runs on it in seconds (the engine's CUDA backend issues exactly what it would issue on a GPU), and
/// <see cref="StepTimeline"/> turns the record into modeled GPU time. Valid only for work that never branches on
/// device values on the host (a training step does not: tests/Sbp.Models.Tests/Cuda/CudaHostSyncTests.cs).
/// </summary>
internal sealed unsafe class RecordingCudaApi(long totalBytes) : ICudaApi
{
    ulong _next = 0x1000_0000_0000UL;
    long _inUse;
    nint _handles;

    public List<RecordedLaunch> Launches { get; } = [];
    public List<RecordedCall> Calls { get; } = [];
    /// <summary>Host reads of device memory (each a synchronization on a GPU).</summary>
    public int HostSyncs { get; private set; }
    /// <summary>What the recorded work belongs to: "forward", "backward", "optimizer" (set by the caller).</summary>
    public string Phase { get; set; } = "setup";
    public bool Recording { get; set; }

    public string Description => "recording device (nothing runs; launches and library calls are recorded for the timeline model)";

    public ulong Allocate(long bytes)
    {
        if (_inUse + bytes > totalBytes) return 0;
        ulong p = _next;
        _next += (ulong)((bytes + 511) / 512 * 512 + 512);
        _inUse += bytes;
        return p;
    }

    public void Free(ulong address) { }   // the pool frees whole blocks it reserved; their bytes stay counted (a high-water mark)
    public (long Free, long Total) MemoryInfo() => (totalBytes - _inUse, totalBytes);
    public void CopyHostToDevice(ulong destination, void* source, long bytes) => Call("cuMemcpyHtoDAsync", 0, bytes, 0, false, $"{bytes} B");
    public void CopyDeviceToHost(void* destination, ulong source, long bytes)
    {
        new Span<byte>(destination, checked((int)bytes)).Clear();
        if (Recording) HostSyncs++;
    }
    public void CopyDeviceToDevice(ulong destination, ulong source, long bytes) => Call("cuMemcpyDtoDAsync", 0, 2.0 * bytes, 0, false, $"{bytes} B");
    public void Memset32(ulong destination, uint value, long count) => Call("cuMemsetD32Async", 0, 4.0 * count, 0, false, $"{count} words");
    public nint LoadModule(string name, string ptx) => ++_handles;
    public nint GetFunction(nint module, string entry) => ++_handles;

    public void Launch(nint function, string entry, uint grid, uint block, uint sharedBytes, ReadOnlySpan<CudaArg> args)
    {
        if (!Recording) return;
        var a = new (string, ulong)[args.Length];
        int[]? meta = null;
        for (int i = 0; i < args.Length; i++)
        {
            a[i] = (args[i].Kind.ToString(), args[i].Bits);
            if (args[i].Data is { } data) meta = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, int>(data).ToArray();
        }
        Launches.Add(new RecordedLaunch(entry, grid, block, sharedBytes, a, OpLabel.Current, Phase, meta));
    }

    public void Synchronize()
    {
        if (Recording) HostSyncs++;
    }

    public nint CreateEvent() => ++_handles;
    public void RecordEvent(nint evt) { }
    public float ElapsedMilliseconds(nint start, nint end) => 0f;
    public void DestroyEvent(nint evt) { }
    public bool EventCompleted(nint evt) => true;
    public nint CommunicationStream() => ++_handles;
    public void RecordCommunicationEvent(nint evt) { }

    public void SgemmStridedBatched(bool transA, bool transB, int m, int n, int k, float alpha,
        ulong a, int lda, long strideA, ulong b, int ldb, long strideB, float beta, ulong c, int ldc, long strideC, int batch, bool tf32) =>
        Call(batch == 1 ? "cublasSgemm" : "cublasSgemmStridedBatched", 2.0 * m * n * k * batch, 4.0 * batch * ((double)m * k + (double)k * n + (beta == 0 ? 1 : 2.0) * m * n),
            Tiles(m, n) * batch, tf32, $"m {m} n {n} k {k} batch {batch}", k);

    public void GemmHalfStridedBatched(bool transA, bool transB, int m, int n, int k, float alpha, Tensors.DType abType,
        ulong a, int lda, long strideA, ulong b, int ldb, long strideB, float beta, Tensors.DType cType, ulong c, int ldc, long strideC, int batch) =>
        Call("cublasGemmStridedBatchedEx", 2.0 * m * n * k * batch, batch * (2.0 * ((double)m * k + (double)k * n) + Tensors.DTypeExtensions.Size(cType) * (beta == 0 ? 1 : 2.0) * m * n),
            Tiles(m, n) * batch, false, $"m {m} n {n} k {k} batch {batch} {abType}", k, half: true);

    public IReadOnlyList<ConvCandidate> ConvolutionCandidates(ConvDirection direction, ConvDescriptor descriptor) => [new ConvCandidate(0, true, true, 0)];

    public void ConvolutionForward(ConvDescriptor d, ConvAlgorithm algo, ulong x, ulong w, ulong y, ulong workspace) => Conv("cudnnConvolutionForward", d);
    public void ConvolutionBackwardData(ConvDescriptor d, ConvAlgorithm algo, ulong w, ulong dy, ulong dx, ulong workspace) => Conv("cudnnConvolutionBackwardData", d);
    public void ConvolutionBackwardFilter(ConvDescriptor d, ConvAlgorithm algo, ulong x, ulong dy, ulong dw, ulong workspace) => Conv("cudnnConvolutionBackwardFilter", d);

    public void BatchNormForwardTraining(int[] xDims, ulong x, ulong y, ulong scale, ulong bias, double averageFactor,
        ulong runningMean, ulong runningVar, double eps, ulong saveMean, ulong saveInvVar) =>
        Call("cudnnBatchNormalizationForwardTraining", 0, 3.0 * 4 * Volume(xDims), 0, false, string.Join('x', xDims));

    public void BatchNormBackward(int[] xDims, ulong x, ulong dy, ulong dx, ulong scale, ulong dScale, ulong dBias,
        double eps, ulong saveMean, ulong saveInvVar) =>
        Call("cudnnBatchNormalizationBackward", 0, 5.0 * 4 * Volume(xDims), 0, false, string.Join('x', xDims));

    public void PoolingForward(PoolDescriptor d, ulong x, ulong y) => Call("cudnnPoolingForward", 0, 4.0 * (Volume(d.X) + Volume(d.Y)), 0, false, string.Join('x', d.X));
    public void PoolingBackward(PoolDescriptor d, ulong y, ulong dy, ulong x, ulong dx) =>
        Call("cudnnPoolingBackward", 0, 4.0 * (2 * Volume(d.X) + 2 * Volume(d.Y)), 0, false, string.Join('x', d.X));

    public void Dispose() { }

    /// <summary>A convolution as the implicit GEMM cuDNN runs: M = N x output positions, N = output channels per group, K = C/G x kernel volume.</summary>
    void Conv(string fn, ConvDescriptor d)
    {
        long outPositions = Volume(d.Y[2..]), kernel = Volume(d.W[2..]);
        long m = d.X[0] * outPositions, n = d.W[0] / d.Groups, k = d.W[1] * kernel;
        double flops = 2.0 * m * n * k * d.Groups;
        bool half = d.Data != DType.Float32;   // 16-bit data: 2 bytes an element, the BF16/FP16 tensor-core rate
        double bytes = (half ? 2.0 : 4.0) * (Volume(d.X) + Volume(d.W) + Volume(d.Y));
        Call(fn, flops, bytes, Tiles(m, n) * d.Groups, d.Tf32, $"x {string.Join('x', d.X)} w {string.Join('x', d.W)}{(half ? $" {d.Data}" : "")}", k, half);
    }

    void Call(string fn, double flops, double bytes, long tiles, bool tf32, string detail, long k = 0, bool half = false)
    {
        if (Recording) Calls.Add(new RecordedCall(fn, flops, bytes, tiles, tf32, detail, OpLabel.Current, Phase, k, half));
    }

    /// <summary>Output tiles of 128 x 128 (cuBLAS's and cuDNN's usual CTA tile for FP32/TF32 on sm_90).</summary>
    static long Tiles(long m, long n) => ((m + 127) / 128) * ((n + 127) / 128);

    static long Volume(int[] dims) => dims.Aggregate(1L, (p, v) => p * v);
}
