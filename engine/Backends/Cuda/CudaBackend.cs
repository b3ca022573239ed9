using System.Runtime.InteropServices;
using Sbp.Memory;
using Sbp.Tensors;

namespace Sbp.Backends.Cuda;

/// <summary>
/// The CUDA backend: cuBLAS for GEMMs, cuDNN for convolutions, batch norm and average pooling, the
/// hand-written PTX kernels of kernels/*.ptx (<see cref="PtxLibrary"/>) for everything else, all
/// through <see cref="ICudaApi"/> (the real libraries, or the simulated device in CI). Tensors'
/// <see cref="Tensor.Pointer"/> holds the device address. Every op is checked against the CPU
/// backend (tests/Sbp.Kernels.Tests/Cuda). This file: kernel launching (through PtxKernels' declarations) and copies;
/// the others sit in CudaBackend.*.cs by concern.
/// </summary>
public sealed unsafe partial class CudaBackend : IBackend
{
    /// <summary>Threads per block of the 1-D grid-stride kernels.</summary>
    const uint Block = 256;
    /// <summary>At most this many blocks per launch (grid-stride loops cover the rest).</summary>
    const long MaxGrid = 4096;

    readonly object _gate = new();
    readonly Dictionary<string, nint> _modules = new(StringComparer.Ordinal);
    readonly Dictionary<string, nint> _functions = new(StringComparer.Ordinal);

    internal CudaBackend(ICudaApi api, string name)
    {
        Api = api;
        Name = name;
    }

    internal ICudaApi Api { get; }

    public string Name { get; }

    /// <summary>The driver's description of the device (name, compute capability, driver version).</summary>
    public string Description => Api.Description;

    /// <summary>Free and total device memory (cuMemGetInfo), including what other processes use.</summary>
    public (long Free, long Total) MemoryInfo() => Api.MemoryInfo();

    /// <summary>Waits for all queued work on the device's stream.</summary>
    public void Synchronize() => Api.Synchronize();

    /// <summary>Milliseconds of device time <paramref name="work"/> queued, measured with two events on the stream.</summary>
    public float TimeMilliseconds(Action work)
    {
        ArgumentNullException.ThrowIfNull(work);
        nint start = Api.CreateEvent(), end = Api.CreateEvent();
        try
        {
            Api.RecordEvent(start);
            work();
            Api.RecordEvent(end);
            return Api.ElapsedMilliseconds(start, end);
        }
        finally
        {
            Api.DestroyEvent(start);
            Api.DestroyEvent(end);
        }
    }

    // ---- launching -----------------------------------------------------------------------------

    /// <summary>The kernel's function, loading its module (and checking its declared parameters against the PTX) the first time.</summary>
    nint Function(Kernel kernel)
    {
        lock (_gate)
        {
            if (_functions.TryGetValue(kernel.Entry, out var f)) return f;
            string module = PtxLibrary.ModuleOf(kernel.Entry);
            if (!_modules.TryGetValue(module, out var m))
            {
                string text = PtxLibrary.ModuleText(module);
                Kernel.CheckModule(module, text);
                _modules[module] = m = Api.LoadModule(module, text);
            }
            return _functions[kernel.Entry] = Api.GetFunction(m, kernel.Entry);
        }
    }

    /// <summary>A launch with an explicit grid and block, its arguments checked against the kernel's parameters.</summary>
    void LaunchGrid(Kernel kernel, uint grid, uint block, uint sharedBytes, params CudaArg[] args)
    {
        kernel.CheckArgs(args);
        Api.Launch(Function(kernel), kernel.Entry, grid, block, sharedBytes, args);
    }

    /// <summary>A grid-stride launch over <paramref name="work"/> items.</summary>
    void Launch(Kernel kernel, long work, params CudaArg[] args) =>
        LaunchGrid(kernel, (uint)Math.Clamp((work + Block - 1) / Block, 1, MaxGrid), Block, 0, args);

    /// <summary>One block per row (grid-stride over rows); the block is a multiple of 32 sized to the row.</summary>
    void LaunchRows(Kernel kernel, long rows, long cols, uint sharedBytes, params CudaArg[] args) =>
        LaunchGrid(kernel, (uint)Math.Clamp(rows, 1, MaxGrid), RowBlock(cols), sharedBytes, args);

    static uint RowBlock(long cols) => (uint)Math.Clamp((cols + 31) / 32 * 32, 32, 256);

    static ulong P(Tensor t) => (ulong)t.Pointer;
    static ulong P(Tensor t, long elementOffset) => (ulong)t.Pointer + (ulong)(elementOffset * t.DType.Size());
    static CudaArg Ptr(Tensor? t) => CudaArg.Ptr(t is null ? 0 : P(t));
    static CudaArg Ptr(ulong address) => CudaArg.Ptr(address);
    static CudaArg U32(long v) => CudaArg.U32(v);
    static CudaArg F32(float v) => CudaArg.F32(v);

    /// <summary>Kernel counts and offsets are 32-bit.</summary>
    static int Count(long n, string op)
    {
        if (n >= int.MaxValue) throw new NotSupportedException($"CudaBackend.{op}: {n} elements; the kernels index with 32 bits (below 2^31 elements).");
        return (int)n;
    }

    /// <summary>
    /// Shape metadata (Int32s) as a by-value kernel parameter of <see cref="PtxKernels.MetaBytes"/> bytes: a launch carries it,
    /// so no host-to-device copy (and no wait for the stream) precedes the kernel.
    /// </summary>
    static CudaArg Meta(string op, params int[] values) => CudaArg.Bytes(PtxKernels.MetaOf(op, values));

    /// <summary>A Float32 workspace tensor on the device, outside any scope (the caller disposes it).</summary>
    static Tensor Work(Device device, params int[] shape) =>
        Tensor.Empty(new Shape(shape), device, DType.Float32, MemoryCategory.Workspace).DetachFromScope();

    // ---- copies --------------------------------------------------------------------------------

    public void CopyFromHost(ReadOnlySpan<byte> source, Tensor destination)
    {
        if (source.Length > destination.Bytes)
            throw new ArgumentException($"CudaBackend.CopyFromHost: {source.Length} bytes do not fit tensor {destination.Shape} ({destination.Bytes} bytes).", nameof(source));
        fixed (byte* p = source) Api.CopyHostToDevice(P(destination), p, source.Length);
    }

    public void CopyToHost(Tensor source, Span<byte> destination)
    {
        if (destination.Length < source.Bytes)
            throw new ArgumentException($"CudaBackend.CopyToHost: tensor {source.Shape} has {source.Bytes} bytes; the destination holds {destination.Length}.", nameof(destination));
        RaiseDeviceErrors();   // the host reads: errors found on the device since the last read are raised first
        fixed (byte* p = destination) Api.CopyDeviceToHost(p, P(source), source.Bytes);
    }

    public void Fill(Tensor tensor, float value) => Api.Memset32(P(tensor), BitConverter.SingleToUInt32Bits(value), tensor.Numel);

    public void Copy(Tensor source, Tensor destination)
    {
        if (source.Shape == destination.Shape)
        {
            Api.CopyDeviceToDevice(P(destination), P(source), destination.Bytes);
            return;
        }
        var (dims, strides) = Geometry.Collapse(destination.Shape.Dims,
            source.Shape.BroadcastStrides(destination.Shape), destination.Shape.Strides());
        StridedCopy(destination.Device, P(source), P(destination), dims, strides[0], strides[1], accumulate: false, "Copy");
    }

    /// <summary>y[off_y(i)] (+)= x[off_x(i)] over the iteration space dims (strided_copy_f32).</summary>
    void StridedCopy(Device device, ulong x, ulong y, int[] dims, long[] xStrides, long[] yStrides, bool accumulate, string op)
    {
        long n = 1;
        foreach (var d in dims) n *= d;
        if (n == 0) return;
        Count(n, op);
        var meta = new int[dims.Length * 3];
        for (int i = 0; i < dims.Length; i++)
        {
            meta[i] = dims[i];
            meta[dims.Length + i] = checked((int)xStrides[i]);
            meta[2 * dims.Length + i] = checked((int)yStrides[i]);
        }
        if (TransposeAxes(dims, xStrides, yStrides) is var (a, b))
        {
            long tilesA = (dims[a] + 31) / 32, tilesB = (dims[b] + 31) / 32, batch = n / ((long)dims[a] * dims[b]);
            LaunchGrid(PtxKernels.TransposeF32, (uint)Math.Min(Count(tilesA * tilesB * batch, op), 65535), Block, 0,
                [Ptr(x), Ptr(y), U32(dims.Length), Meta(op, meta), U32(a), U32(b), U32(tilesA), U32(tilesB), U32(batch), U32(accumulate ? 1 : 0)]);
            return;
        }
        Launch(PtxKernels.StridedCopyF32, n, Ptr(x), Ptr(y), U32(n), U32(dims.Length), Meta(op, meta), U32(accumulate ? 1 : 0));
    }

    /// <summary>
    /// The axes of a copy that transpose_f32 tiles: y contiguous along the last axis a, x contiguous along another axis b
    /// (neither broadcast, both at least 16 long); null when the copy reads x contiguously anyway or the tiles would be thin.
    /// </summary>
    static (int A, int B)? TransposeAxes(int[] dims, long[] xStrides, long[] yStrides)
    {
        int a = dims.Length - 1;
        if (a < 1 || yStrides[a] != 1 || xStrides[a] is 0 or 1 || dims[a] < 16) return null;
        for (int b = a - 1; b >= 0; b--)
            if (xStrides[b] == 1 && yStrides[b] != 0 && dims[b] >= 16) return (a, b);
        return null;
    }
}
