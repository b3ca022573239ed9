using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using System.Text;
using Sbp.Backends.Cuda.Interop;
using static Sbp.Backends.Cuda.Interop.CudaErrors;

namespace Sbp.Backends.Cuda;

/// <summary>
/// <see cref="ICudaApi"/> over the real libraries: the device's primary context (retained, made
/// current on each calling thread), one non-blocking stream that every copy, memset, launch and
/// library call is ordered on, and cuBLAS / cuDNN handles created on first use (so a machine with
/// only the driver can still run the PTX kernels). Host-to-device copies are staged through pinned
/// memory and never wait (NativeCudaApi.Staging.cs); device-to-host copies wait for the stream.
/// </summary>
internal sealed unsafe partial class NativeCudaApi : ICudaApi
{
    readonly int _device;
    readonly nint _context;
    readonly nint _stream;
    nint _cublas, _cudnn;
    readonly delegate* unmanaged<float*, nint, nint, CuResult> _elapsed;
    readonly string _elapsedName;
    readonly ConcurrentDictionary<nint, string> _moduleNames = new();
    readonly Dictionary<string, ConvHandles> _convDescriptors = new(StringComparer.Ordinal);
    bool _disposed;

    public NativeCudaApi(int ordinal)
    {
        CudaLibraries.EnsureResolver();
        nint lib = CudaLibraries.LoadDriver();
        Check(CuDriver.Init(0));
        Check(CuDriver.DeviceGetCount(out int count));
        if (ordinal < 0 || ordinal >= count)
            throw new ArgumentOutOfRangeException(nameof(ordinal), $"cuda:{ordinal}: the machine has {count} CUDA device(s) (0..{count - 1}).");
        Check(CuDriver.DeviceGet(out _device, ordinal));
        Check(CuDriver.DevicePrimaryCtxRetain(out _context, _device));
        Check(CuDriver.CtxSetCurrent(_context));
        Check(CuDriver.StreamCreate(out _stream, 1));   // CU_STREAM_NON_BLOCKING

        _elapsedName = CuDriver.ElapsedTimeExports.FirstOrDefault(n => NativeLibrary.TryGetExport(lib, n, out _))
            ?? throw new EntryPointNotFoundException("libcuda.so.1 exports neither cuEventElapsedTime_v2 nor cuEventElapsedTime.");
        _elapsed = (delegate* unmanaged<float*, nint, nint, CuResult>)NativeLibrary.GetExport(lib, _elapsedName);

        var name = stackalloc byte[256];
        Check(CuDriver.DeviceGetName(name, 256, _device));
        Check(CuDriver.DeviceGetAttribute(out int major, (int)CuDeviceAttribute.ComputeCapabilityMajor, _device));
        Check(CuDriver.DeviceGetAttribute(out int minor, (int)CuDeviceAttribute.ComputeCapabilityMinor, _device));
        Check(CuDriver.DriverGetVersion(out int version));
        Description = $"{Marshal.PtrToStringAnsi((nint)name)} (sm_{major}{minor}, driver {version / 1000}.{version % 1000 / 10})";
    }

    public string Description { get; }

    /// <summary>The primary context is current per thread; ops may run on any thread.</summary>
    void Current()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        Check(CuDriver.CtxSetCurrent(_context));
    }

    public ulong Allocate(long bytes)
    {
        Current();
        var r = CuDriver.MemAlloc(out ulong p, (nuint)bytes);
        if (r == CuResult.OutOfMemory) return 0;
        Check(r, "cuMemAlloc_v2");
        return p;
    }

    public void Free(ulong address)
    {
        Current();
        Check(CuDriver.MemFree(address));
    }

    public (long Free, long Total) MemoryInfo()
    {
        Current();
        Check(CuDriver.MemGetInfo(out nuint free, out nuint total));
        return ((long)free, (long)total);
    }

    public void CopyDeviceToHost(void* destination, ulong source, long bytes)
    {
        if (bytes == 0) return;
        Current();
        Check(CuDriver.MemcpyDtoHAsync(destination, source, (nuint)bytes, _stream));
        Check(CuDriver.StreamSynchronize(_stream));
    }

    public void CopyDeviceToDevice(ulong destination, ulong source, long bytes)
    {
        if (bytes == 0) return;
        Current();
        Check(CuDriver.MemcpyDtoDAsync(destination, source, (nuint)bytes, _stream));
    }

    public void Memset32(ulong destination, uint value, long count)
    {
        if (count == 0) return;
        Current();
        Check(CuDriver.MemsetD32Async(destination, value, (nuint)count, _stream));
    }

    public nint LoadModule(string name, string ptx)
    {
        Current();
        const int LogBytes = 8192;
        var bytes = Encoding.ASCII.GetBytes(ptx + "\0");
        var log = new byte[LogBytes];
        fixed (byte* image = bytes, logp = log)
        {
            int* options = stackalloc int[] { (int)CuJitOption.ErrorLogBuffer, (int)CuJitOption.ErrorLogBufferSizeBytes };
            void** values = stackalloc void*[] { logp, (void*)LogBytes };
            var r = CuDriver.ModuleLoadDataEx(out nint module, image, 2, options, values);
            if (r != CuResult.Success)
            {
                var e = Driver(r, "cuModuleLoadDataEx", $"loading kernels/{name}.ptx");
                string jit = Encoding.ASCII.GetString(log).TrimEnd('\0').Trim();
                throw new CudaException(e.Library, e.Function, e.Code, e.ErrorName, e.ErrorString + (jit.Length > 0 ? $"; JIT log: {jit}" : ""), e.Op);
            }
            _moduleNames[module] = name;
            return module;
        }
    }

    public nint GetFunction(nint module, string entry)
    {
        Current();
        Check(CuDriver.ModuleGetFunction(out nint f, module, entry));
        return f;
    }

    public void Launch(nint function, string entry, uint grid, uint block, uint sharedBytes, ReadOnlySpan<CudaArg> args)
    {
        Current();
        // kernelParams[i] points at argument i's value; 4-byte params read the low half (little-endian); a byte array
        // (the shape metadata) is copied into one stack buffer, which cuLaunchKernel copies before it returns.
        var values = stackalloc ulong[args.Length];
        var pointers = stackalloc void*[args.Length];
        int blobBytes = 0;
        foreach (var a in args) blobBytes += a.Data?.Length ?? 0;
        var blobs = stackalloc byte[blobBytes];
        for (int i = 0, at = 0; i < args.Length; i++)
        {
            if (args[i].Data is { } data)
            {
                data.CopyTo(new Span<byte>(blobs + at, data.Length));
                pointers[i] = blobs + at;
                at += data.Length;
                continue;
            }
            values[i] = args[i].Bits;
            pointers[i] = &values[i];
        }
        var r = CuDriver.LaunchKernel(function, grid, 1, 1, block, 1, 1, sharedBytes, _stream, pointers, null);
        if (r != CuResult.Success) throw Driver(r, $"cuLaunchKernel({entry}, grid {grid}, block {block}, shared {sharedBytes})", Sbp.Memory.OpLabel.Current);
    }

    public void Synchronize()
    {
        Current();
        Check(CuDriver.StreamSynchronize(_stream));
    }

    public nint CreateEvent()
    {
        Current();
        Check(CuDriver.EventCreate(out nint e, 0));
        return e;
    }

    public void RecordEvent(nint evt)
    {
        Current();
        Check(CuDriver.EventRecord(evt, _stream));
    }

    public float ElapsedMilliseconds(nint start, nint end)
    {
        Current();
        Check(CuDriver.EventSynchronize(end));
        float ms = 0;
        Check(_elapsed(&ms, start, end), _elapsedName);
        return ms;
    }

    public void DestroyEvent(nint evt) => Check(CuDriver.EventDestroy(evt));

    // ---- cuDNN --------------------------------------------------------------------------------

    nint Dnn()
    {
        Current();
        if (_cudnn != 0) return _cudnn;
        CudaLibraries.LoadCudnn();
        Check(CuDnn.Create(out var h));
        Check(CuDnn.SetStream(h, _stream));
        return _cudnn = h;
    }

    static nint Tensor(int[] dims, CudnnDataType type = CudnnDataType.Float)
    {
        Check(CuDnn.CreateTensorDescriptor(out var d));
        var strides = ConvDescriptor.PackedStrides(dims);
        fixed (int* pd = dims, ps = strides)
            Check(CuDnn.SetTensorNdDescriptor(d, type, dims.Length, pd, ps));
        return d;
    }

    /// <summary>cuDNN's name of a tensor element type.</summary>
    static CudnnDataType DataType(Tensors.DType type) => type switch
    {
        Tensors.DType.BFloat16 => CudnnDataType.BFloat16,
        Tensors.DType.Float16 => CudnnDataType.Half,
        _ => CudnnDataType.Float,
    };

    /// <summary>The cuDNN descriptors of one convolution shape, made once and kept until the device is disposed.</summary>
    ConvHandles Handles(ConvDescriptor d)
    {
        lock (_convDescriptors)
        {
            if (!_convDescriptors.TryGetValue(d.Key, out var h)) _convDescriptors[d.Key] = h = new ConvHandles(d);
            return h;
        }
    }

    /// <summary>The descriptors of one convolution, destroyed together.</summary>
    sealed class ConvHandles : IDisposable
    {
        public readonly nint X, W, Y, Conv;

        public ConvHandles(ConvDescriptor d)
        {
            var data = DataType(d.Data);
            X = Tensor(d.X, data);
            Y = Tensor(d.Y, data);
            Check(CuDnn.CreateFilterDescriptor(out W));
            fixed (int* pw = d.W) Check(CuDnn.SetFilterNdDescriptor(W, data, 0, d.W.Length, pw));
            Check(CuDnn.CreateConvolutionDescriptor(out Conv));
            // Float32 compute whatever the data (16-bit data: the PSEUDO_HALF / PSEUDO_BFLOAT16 configurations)
            fixed (int* pp = d.Pad, ps = d.Stride, pd = d.Dilation)
                Check(CuDnn.SetConvolutionNdDescriptor(Conv, d.Pad.Length, pp, ps, pd, 1, CudnnDataType.Float));
            Check(CuDnn.SetConvolutionGroupCount(Conv, d.Groups));
            // CUDNN_FMA_MATH (3) keeps full float32, as the CPU; CUDNN_DEFAULT_MATH (0) allows TF32 on sm_80+;
            // CUDNN_TENSOR_OP_MATH (1) for 16-bit data (tensor cores, Float32 accumulation).
            Check(CuDnn.SetConvolutionMathType(Conv, d.Data != Tensors.DType.Float32 ? 1 : d.Tf32 ? 0 : 3));
        }

        public void Dispose()
        {
            CuDnn.DestroyTensorDescriptor(X);
            CuDnn.DestroyTensorDescriptor(Y);
            CuDnn.DestroyFilterDescriptor(W);
            CuDnn.DestroyConvolutionDescriptor(Conv);
        }
    }

    public IReadOnlyList<ConvCandidate> ConvolutionCandidates(ConvDirection direction, ConvDescriptor d)
    {
        var h = Dnn();
        var c = Handles(d);
        const int Requested = 8;
        var perf = stackalloc CudnnAlgoPerf[Requested];
        int returned;
        switch (direction)
        {
            case ConvDirection.Forward:
                Check(CuDnn.GetConvolutionForwardAlgorithm(h, c.X, c.W, c.Conv, c.Y, Requested, out returned, perf));
                break;
            case ConvDirection.BackwardData:
                Check(CuDnn.GetConvolutionBackwardDataAlgorithm(h, c.W, c.Y, c.Conv, c.X, Requested, out returned, perf));
                break;
            default:
                Check(CuDnn.GetConvolutionBackwardFilterAlgorithm(h, c.X, c.Y, c.Conv, c.W, Requested, out returned, perf));
                break;
        }
        var candidates = new List<ConvCandidate>(returned);
        for (int i = 0; i < returned; i++)
        {
            bool usable = perf[i].Status == CudnnStatus.Success;
            int algo = perf[i].Algo;
            nuint ws = 0;
            if (usable)
                switch (direction)
                {
                    case ConvDirection.Forward:
                        Check(CuDnn.GetConvolutionForwardWorkspaceSize(h, c.X, c.W, c.Conv, c.Y, algo, out ws));
                        break;
                    case ConvDirection.BackwardData:
                        Check(CuDnn.GetConvolutionBackwardDataWorkspaceSize(h, c.W, c.Y, c.Conv, c.X, algo, out ws));
                        break;
                    default:
                        Check(CuDnn.GetConvolutionBackwardFilterWorkspaceSize(h, c.X, c.Y, c.Conv, c.W, algo, out ws));
                        break;
                }
            candidates.Add(new ConvCandidate(algo, usable, perf[i].Determinism == 1, (long)ws));
        }
        return candidates;
    }

    public void ConvolutionForward(ConvDescriptor d, ConvAlgorithm algo, ulong x, ulong w, ulong y, ulong workspace)
    {
        var h = Dnn();
        var c = Handles(d);
        float alpha = 1f, beta = 0f;
        Check(CuDnn.ConvolutionForward(h, &alpha, c.X, x, c.W, w, c.Conv, algo.Algo, workspace, (nuint)algo.WorkspaceBytes, &beta, c.Y, y));
    }

    public void ConvolutionBackwardData(ConvDescriptor d, ConvAlgorithm algo, ulong w, ulong dy, ulong dx, ulong workspace)
    {
        var h = Dnn();
        var c = Handles(d);
        float alpha = 1f, beta = 0f;
        Check(CuDnn.ConvolutionBackwardData(h, &alpha, c.W, w, c.Y, dy, c.Conv, algo.Algo, workspace, (nuint)algo.WorkspaceBytes, &beta, c.X, dx));
    }

    public void ConvolutionBackwardFilter(ConvDescriptor d, ConvAlgorithm algo, ulong x, ulong dy, ulong dw, ulong workspace)
    {
        var h = Dnn();
        var c = Handles(d);
        float alpha = 1f, beta = 0f;
        Check(CuDnn.ConvolutionBackwardFilter(h, &alpha, c.X, x, c.Y, dy, c.Conv, algo.Algo, workspace, (nuint)algo.WorkspaceBytes, &beta, c.W, dw));
    }

    const int BnSpatial = 1;

    public void BatchNormForwardTraining(int[] xDims, ulong x, ulong y, ulong scale, ulong bias, double averageFactor,
        ulong runningMean, ulong runningVar, double eps, ulong saveMean, ulong saveInvVar)
    {
        var h = Dnn();
        nint xd = Tensor(xDims), bn = Tensor([1, xDims[1], 1, 1]);
        try
        {
            float alpha = 1f, beta = 0f;
            Check(CuDnn.BatchNormalizationForwardTraining(h, BnSpatial, &alpha, &beta, xd, x, xd, y, bn, scale, bias, averageFactor,
                runningMean, runningVar, eps, saveMean, saveInvVar));
        }
        finally
        {
            CuDnn.DestroyTensorDescriptor(xd);
            CuDnn.DestroyTensorDescriptor(bn);
        }
    }

    public void BatchNormBackward(int[] xDims, ulong x, ulong dy, ulong dx, ulong scale, ulong dScale, ulong dBias,
        double eps, ulong saveMean, ulong saveInvVar)
    {
        var h = Dnn();
        nint xd = Tensor(xDims), bn = Tensor([1, xDims[1], 1, 1]);
        try
        {
            float one = 1f, zero = 0f;
            Check(CuDnn.BatchNormalizationBackward(h, BnSpatial, &one, &zero, &one, &zero, xd, x, xd, dy, xd, dx, bn, scale, dScale, dBias,
                eps, saveMean, saveInvVar));
        }
        finally
        {
            CuDnn.DestroyTensorDescriptor(xd);
            CuDnn.DestroyTensorDescriptor(bn);
        }
    }

    nint Pooling(PoolDescriptor d)
    {
        Check(CuDnn.CreatePoolingDescriptor(out var p));
        fixed (int* w = d.Window, pad = d.Pad, s = d.Stride)
            Check(CuDnn.SetPoolingNdDescriptor(p, (int)d.Mode, 0, d.Window.Length, w, pad, s));
        return p;
    }

    public void PoolingForward(PoolDescriptor d, ulong x, ulong y)
    {
        var h = Dnn();
        nint p = Pooling(d), xd = Tensor(d.X), yd = Tensor(d.Y);
        try
        {
            float alpha = 1f, beta = 0f;
            Check(CuDnn.PoolingForward(h, p, &alpha, xd, x, &beta, yd, y));
        }
        finally
        {
            CuDnn.DestroyPoolingDescriptor(p);
            CuDnn.DestroyTensorDescriptor(xd);
            CuDnn.DestroyTensorDescriptor(yd);
        }
    }

    public void PoolingBackward(PoolDescriptor d, ulong y, ulong dy, ulong x, ulong dx)
    {
        var h = Dnn();
        nint p = Pooling(d), xd = Tensor(d.X), yd = Tensor(d.Y);
        try
        {
            float alpha = 1f, beta = 0f;
            Check(CuDnn.PoolingBackward(h, p, &alpha, yd, y, yd, dy, xd, x, &beta, xd, dx));
        }
        finally
        {
            CuDnn.DestroyPoolingDescriptor(p);
            CuDnn.DestroyTensorDescriptor(xd);
            CuDnn.DestroyTensorDescriptor(yd);
        }
    }

    public void Dispose()
    {
        if (_disposed) return;
        CuDriver.CtxSetCurrent(_context);
        CuDriver.StreamSynchronize(_stream);
        if (_cublas != 0) CuBlas.Destroy(_cublas);
        if (_cudnn != 0) CuDnn.Destroy(_cudnn);
        foreach (var c in _convDescriptors.Values) c.Dispose();
        foreach (var m in _moduleNames.Keys) CuDriver.ModuleUnload(m);
        DestroyCommunicationStream();
        DestroyStaging();
        CuDriver.StreamDestroy(_stream);
        CuDriver.DevicePrimaryCtxRelease(_device);
        _disposed = true;
    }
}
