using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.InteropServices;
using Sbp.Backends.Cuda;
using Sbp.Memory;
using Sbp.PtxSim;

namespace Sbp.CudaSim;

/// <summary>
/// <see cref="ICudaApi"/> without a GPU. Device memory is a <see cref="SimMemory"/> (every access
/// bounds-checked, fresh memory reads as NaN), launches run in the <see cref="PtxSimulator"/>, and
/// the cuBLAS and cuDNN calls run the reference implementations in SimCudaApi.Blas.cs and
/// SimCudaApi.Dnn.cs, which check their arguments as the libraries document (failures are
/// <see cref="CudaException"/>s with the libraries' status names). One lock: calls are serialized,
/// as on one stream.
/// </summary>
internal sealed unsafe partial class SimCudaApi : ICudaApi
{
    static readonly ConcurrentDictionary<string, PtxModule> Parsed = new(StringComparer.Ordinal);

    readonly object _gate = new();
    readonly List<PtxModule> _modules = [];
    readonly List<(PtxModule Module, string Entry)> _functions = [];
    readonly Dictionary<nint, long> _events = new();
    /// <summary>The epsilon of the batch-norm forward pass that wrote each saved-mean address (cuDNN wants the same in backward).</summary>
    readonly Dictionary<ulong, double> _batchNormEps = new();
    readonly long _total;
    long _nextEvent;

    internal SimCudaApi(long totalBytes)
    {
        _total = totalBytes;
        Memory = new SimMemory();
        Simulator = new PtxSimulator(Memory);
    }

    public string Description => "simulated CUDA device (PTX simulator, reference cuBLAS/cuDNN)";

    /// <summary>The simulated global memory.</summary>
    public SimMemory Memory { get; }
    public PtxSimulator Simulator { get; }

    /// <summary>Kernel launches so far, by entry.</summary>
    public ConcurrentDictionary<string, int> Launches { get; } = new(StringComparer.Ordinal);

    /// <summary>cuBLAS / cuDNN calls so far, by function name.</summary>
    public ConcurrentDictionary<string, int> LibraryCalls { get; } = new(StringComparer.Ordinal);

    /// <summary>Host synchronizations and host-device copies so far.</summary>
    public SimTransfers Transfers { get; } = new();

    internal void Called(string function) => LibraryCalls.AddOrUpdate(function, 1, (_, c) => c + 1);

    public ulong Allocate(long bytes)
    {
        lock (_gate) return Memory.BytesInUse + bytes > _total ? 0 : Memory.Allocate(bytes);
    }

    public void Free(ulong address)
    {
        lock (_gate) Memory.Free(address);
    }

    public (long Free, long Total) MemoryInfo()
    {
        lock (_gate) return (_total - Memory.BytesInUse, _total);
    }

    public void CopyHostToDevice(ulong destination, void* source, long bytes)
    {
        if (bytes == 0) return;
        Transfers.Upload(bytes);
        lock (_gate) Memory.Write(destination, new ReadOnlySpan<byte>(source, checked((int)bytes)));
    }

    public void CopyDeviceToHost(void* destination, ulong source, long bytes)
    {
        if (bytes == 0) return;
        Transfers.Download(bytes);
        lock (_gate) Memory.Read(source, new Span<byte>(destination, checked((int)bytes)));
    }

    public void CopyDeviceToDevice(ulong destination, ulong source, long bytes)
    {
        lock (_gate)
        {
            var buffer = new byte[bytes];
            Memory.Read<byte>(source, buffer);
            Memory.Write<byte>(destination, buffer);
        }
    }

    public void Memset32(ulong destination, uint value, long count)
    {
        var words = new uint[count];
        Array.Fill(words, value);
        lock (_gate) Memory.Write<uint>(destination, words);
    }

    /// <summary>Device memory read and written by the simulated libraries themselves (not host transfers).</summary>
    internal void ReadDeviceBytes(ulong address, Span<byte> destination)
    {
        lock (_gate) Memory.Read(address, destination);
    }

    internal void WriteDeviceBytes(ulong address, ReadOnlySpan<byte> source)
    {
        lock (_gate) Memory.Write(address, source);
    }

    internal float[] ReadFloats(ulong address, long count)
    {
        var a = new float[count];
        if (count > 0) Memory.Read<float>(address, a);
        return a;
    }

    internal void WriteFloats(ulong address, float[] data)
    {
        if (data.Length > 0) Memory.Write<float>(address, data);
    }

    public nint LoadModule(string name, string ptx)
    {
        var module = Parsed.GetOrAdd(name, n => PtxModule.Parse(ptx, $"kernels/{n}.ptx"));
        lock (_gate)
        {
            _modules.Add(module);
            return _modules.Count;
        }
    }

    public nint GetFunction(nint module, string entry)
    {
        lock (_gate)
        {
            var m = _modules[(int)module - 1];
            if (!m.EntryNames.Contains(entry))
                throw new CudaException("CUDA driver", "cuModuleGetFunction", 500, "CUDA_ERROR_NOT_FOUND", "named symbol not found", OpLabel.Current);
            _functions.Add((m, entry));
            return _functions.Count;
        }
    }

    public void Launch(nint function, string entry, uint grid, uint block, uint sharedBytes, ReadOnlySpan<CudaArg> args)
    {
        var simArgs = new KernelArg[args.Length];
        for (int i = 0; i < args.Length; i++)
            simArgs[i] = args[i].Kind switch
            {
                CudaArgKind.Float32 => KernelArg.F32(BitConverter.UInt32BitsToSingle((uint)args[i].Bits)),
                CudaArgKind.Int64 => KernelArg.U64(args[i].Bits),
                CudaArgKind.Bytes => KernelArg.Bytes(args[i].Data!),
                _ => KernelArg.U32((uint)args[i].Bits),
            };
        lock (_gate)
        {
            var (module, name) = _functions[(int)function - 1];
            if (name != entry) throw new InvalidOperationException($"SimCudaApi.Launch: function handle {function} is {name}, not {entry}.");
            Simulator.Launch(module, entry, new Dim3(grid), new Dim3(block), sharedBytes, simArgs);
        }
        Launches.AddOrUpdate(entry, 1, (_, c) => c + 1);
    }

    public void Synchronize() => Transfers.Sync("stream synchronize");

    public nint CreateEvent()
    {
        lock (_gate)
        {
            nint e = (nint)(++_nextEvent);
            _events[e] = 0;
            return e;
        }
    }

    public void RecordEvent(nint evt)
    {
        ForgetCommunicationEvent(evt);
        lock (_gate) _events[evt] = Stopwatch.GetTimestamp();
    }

    /// <summary>Host time between the two records (the simulator has no device clock).</summary>
    public float ElapsedMilliseconds(nint start, nint end)
    {
        Transfers.Sync("event synchronize");
        lock (_gate) return (float)Stopwatch.GetElapsedTime(_events[start], _events[end]).TotalMilliseconds;
    }

    public void DestroyEvent(nint evt)
    {
        ForgetCommunicationEvent(evt);
        lock (_gate) _events.Remove(evt);
    }

    public void Dispose() { }

    internal static CudaException CublasError(string function, int code, string name, string what) =>
        new("cuBLAS", function, code, name, what, OpLabel.Current);

    internal static CudaException CudnnError(string function, string what) =>
        new("cuDNN", function, 2000, "CUDNN_STATUS_BAD_PARAM", what, OpLabel.Current);
}
