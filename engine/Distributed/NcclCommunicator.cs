using System.Buffers.Binary;
using System.Diagnostics;
using Sbp.Backends.Cuda;
using Sbp.Distributed.Nccl;
using Sbp.Tensors;

namespace Sbp.Distributed;

/// <summary>
/// Ranks with one CUDA GPU each, over NCCL (<c>libnccl.so.2</c>, 2.14 or later). Float32 all-reduces and tensor
/// broadcasts of GPU memory are NCCL collectives on the device's communication stream, after the compute work issued
/// before them, so backward goes on while gradient buckets are summed and a host copy never waits for another rank.
/// Host collectives (doubles, bytes, barriers) and the unique id go through the bootstrap communicator (MPI under
/// mpirun), which the caller owns. The NCCL communicator is nonblocking (ncclConfig_t.blocking = 0): every wait polls
/// ncclCommGetAsyncError and an event with a deadline (<see cref="Communicator.Timeout"/>), then ncclCommAbort and the
/// bootstrap's Abort end every rank rather than hang (NCCL user guide, "Error handling and communicator abort").
/// A tensor given to <see cref="StartAllReduce"/> must stay alive and unwritten until the reduction completes.
/// <see cref="Communicator.Timeout"/> starts as the bootstrap's.
/// </summary>
public sealed class NcclCommunicator : Communicator
{
    readonly Communicator _bootstrap;
    readonly INcclApi _nccl;
    readonly ICudaApi _cuda;
    readonly object _gate = new();
    nint _comm;
    bool _aborted, _disposed;

    NcclCommunicator(Communicator bootstrap, Device device, ICudaApi cuda, INcclApi nccl)
    {
        _bootstrap = bootstrap;
        _nccl = nccl;
        _cuda = cuda;
        Device = device;
        Timeout = bootstrap.Timeout;
    }

    /// <summary>
    /// Joins every rank of <paramref name="bootstrap"/> (each rank calls it with its own CUDA <paramref name="device"/>):
    /// rank 0's ncclGetUniqueId is broadcast over the bootstrap, then ncclCommInitRankConfig (nonblocking) is polled
    /// until every rank has joined. Throws <see cref="ArgumentException"/> for a device that is not CUDA and
    /// <see cref="DistributedException"/> when libnccl.so.2 is missing (saying where it looked and how to install it).
    /// </summary>
    public static NcclCommunicator Create(Communicator bootstrap, Device device)
    {
        var cuda = CudaApiOf(device);
        return Create(bootstrap, device, cuda, NativeNcclApi.Load());
    }

    /// <summary>Over another NCCL (the simulated one of kernels/Sbp.CudaSim).</summary>
    internal static NcclCommunicator Create(Communicator bootstrap, Device device, INcclApi nccl) => Create(bootstrap, device, CudaApiOf(device), nccl);

    static NcclCommunicator Create(Communicator bootstrap, Device device, ICudaApi cuda, INcclApi nccl)
    {
        ArgumentNullException.ThrowIfNull(bootstrap);
        var c = new NcclCommunicator(bootstrap, device, cuda, nccl);
        c.Join();
        return c;
    }

    /// <summary>True when libnccl.so.2 (2.14 or later) loads; otherwise <paramref name="reason"/> says where it was looked for.</summary>
    public static bool IsAvailable(out string reason)
    {
        try
        {
            NativeNcclApi.Load();
            reason = "";
            return true;
        }
        catch (DistributedException e)
        {
            reason = e.Message;
            return false;
        }
    }

    static ICudaApi CudaApiOf(Device device)
    {
        ArgumentNullException.ThrowIfNull(device);
        return (device.Backend as CudaBackend)?.Api ?? throw new ArgumentException(
            $"NCCL sums GPU memory: device '{device.Name}' is {device.Kind}, not CUDA. Use --dist mpi for ranks on the CPU (Open MPI), " +
            "or give each rank its own GPU (--device cuda:N).", nameof(device));
    }

    public override int Rank => _bootstrap.Rank;
    public override int Size => _bootstrap.Size;
    public override string Engine => "nccl";

    /// <summary>This rank's GPU.</summary>
    public Device Device { get; }

    /// <summary>The NCCL library: version and path (or "simulated NCCL").</summary>
    public string Library => _nccl.Description;

    void Join()
    {
        _cuda.CommunicationStream();   // makes the device current on this thread: NCCL joins on the current device
        Span<byte> message = stackalloc byte[4 + NcclUniqueId.Bytes];
        if (Rank == 0)
        {
            var r = _nccl.GetUniqueId(out var id);
            BinaryPrimitives.WriteInt32LittleEndian(message, (int)r);
            if (r == NcclResult.Success) id.ToBytes().CopyTo(message[4..]);
        }
        _bootstrap.Broadcast(message, 0, "the NCCL unique id (rank 0's ncclGetUniqueId)");
        var made = (NcclResult)BinaryPrimitives.ReadInt32LittleEndian(message);
        if (made != NcclResult.Success)
            throw new DistributedException($"NCCL: rank 0's ncclGetUniqueId failed with {NcclNative.Name(made)} ({(int)made}): {_nccl.ErrorString(made)}; no rank can start.");
        var config = NcclConfig.Create(blocking: false);
        var result = _nccl.CommInitRankConfig(out _comm, Size, NcclUniqueId.FromBytes(message[4..]), Rank, config);
        if (result == NcclResult.InProgress)
            result = PollInProgress() ?? Fail(3, $"rank {Rank} of {Size}: ncclCommInitRankConfig on {Device.Name} had not finished after {Timeout.TotalSeconds:F0} s " +
                "(the communicator's timeout): a rank is lost or hung, or did not start. Aborting NCCL (ncclCommAbort) and every rank.");
        if (result != NcclResult.Success)
        {
            string why = Describe(result, _comm);
            AbortComm();
            throw new DistributedException($"NCCL: rank {Rank} of {Size}: ncclCommInitRankConfig on {Device.Name} failed with {why}.");
        }
    }

    public override PendingReduction StartAllReduce(Tensor buffer, string what)
    {
        ulong address = DeviceAddress(buffer, "all-reduce", what);
        if (buffer.DType != DType.Float32)
            throw new ArgumentException($"NCCL all-reduce of {what}: the tensor is {buffer.DType}; the engine sums float32 buffers.", nameof(buffer));
        lock (_gate)
        {
            var stream = Stream(what);
            Enqueued(_nccl.AllReduce(address, address, (ulong)buffer.Numel, NcclDataType.Float32, NcclRedOp.Sum, _comm, stream), "ncclAllReduce", what);
            return new Collective(this, "all-reduce", what, RecordDone());
        }
    }

    public override void Broadcast(Tensor tensor, int root, string what)
    {
        if (root < 0 || root >= Size) throw new ArgumentOutOfRangeException(nameof(root), root, $"NCCL broadcast: root must be a rank in 0..{Size - 1}.");
        ulong address = DeviceAddress(tensor, "broadcast", what);
        Collective c;
        lock (_gate)
        {
            var stream = Stream(what);
            Enqueued(_nccl.Broadcast(address, address, (ulong)tensor.Bytes, NcclDataType.Uint8, root, _comm, stream), "ncclBroadcast", what);
            c = new Collective(this, "broadcast", what, RecordDone());
        }
        c.Wait();
    }

    public override void AllReduce(Span<double> values, string what) => _bootstrap.AllReduce(values, what);
    public override void Broadcast(Span<byte> bytes, int root, string what) => _bootstrap.Broadcast(bytes, root, what);
    public override void Barrier(string what) => _bootstrap.Barrier(what);

    public override void Abort(int code, string message)
    {
        lock (_gate) AbortComm();
        _bootstrap.Abort(code, message);
    }

    ulong DeviceAddress(Tensor t, string op, string what)
    {
        if (t.Device != Device)
            throw new ArgumentException($"NCCL {op} of {what}: the tensor {t.Shape} is on {t.Device}; this rank's NCCL communicator serves {Device.Name}.");
        return (ulong)t.Pointer;
    }

    /// <summary>The communication stream, after the compute work issued so far (call under the lock).</summary>
    nint Stream(string what)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_aborted) throw new DistributedException($"rank {Rank}: NCCL for {what}: the communicator was aborted after an earlier failure.");
        return _cuda.CommunicationStream();
    }

    nint RecordDone()
    {
        var evt = _cuda.CreateEvent();
        _cuda.RecordCommunicationEvent(evt);
        return evt;
    }

    /// <summary>A call's result: ncclInProgress is polled to its end; an error aborts the communicator and throws.</summary>
    void Enqueued(NcclResult r, string call, string what)
    {
        if (r == NcclResult.InProgress)
            r = PollInProgress() ?? Fail(3, $"rank {Rank} of {Size}: {call} for {what} was still in progress after {Timeout.TotalSeconds:F0} s (the timeout). " +
                "Aborting NCCL (ncclCommAbort) and every rank.");
        if (r == NcclResult.Success) return;
        string why = Describe(r, _comm);
        AbortComm();
        throw new DistributedException($"NCCL: rank {Rank} of {Size}: {call} for {what} failed with {why}.");
    }

    /// <summary>Polls ncclCommGetAsyncError while it says ncclInProgress; null when the timeout passed first.</summary>
    NcclResult? PollInProgress()
    {
        long start = Stopwatch.GetTimestamp();
        while (true)
        {
            var q = _nccl.CommGetAsyncError(_comm, out var state);
            if (q != NcclResult.Success) return q;
            if (state != NcclResult.InProgress) return state;
            var waited = Stopwatch.GetElapsedTime(start);
            if (waited > Timeout) return null;
            Pause(waited);
        }
    }

    static void Pause(TimeSpan waited)
    {
        if (waited.TotalMilliseconds < 2) Thread.Yield();
        else Thread.Sleep(1);
    }

    /// <summary>True once the collective is done; an asynchronous error or a failed event query ends every rank.</summary>
    bool Poll(Collective c)
    {
        lock (_gate)
        {
            if (c.Done) return true;
            if (_aborted) throw new DistributedException($"rank {Rank}: NCCL {c.Op} of {c.What}: the communicator was aborted; the result will not arrive.");
            var q = _nccl.CommGetAsyncError(_comm, out var state);
            if (q != NcclResult.Success) state = q;
            if (state is not (NcclResult.Success or NcclResult.InProgress))
                Fail(5, $"rank {Rank} of {Size}: NCCL {c.Op} of {c.What} failed with {Describe(state, _comm)} (ncclCommGetAsyncError). " +
                    "Aborting NCCL (ncclCommAbort) and every rank.");
            bool done;
            try
            {
                done = _cuda.EventCompleted(c.Event);
            }
            catch (CudaException e)
            {
                return Fail<bool>(5, $"rank {Rank} of {Size}: NCCL {c.Op} of {c.What}: the device failed: {e.Message}. Aborting NCCL (ncclCommAbort) and every rank.");
            }
            if (!done) return false;
            _cuda.DestroyEvent(c.Event);
            c.Done = true;
            return true;
        }
    }

    void TimedOut(Collective c, TimeSpan waited)
    {
        lock (_gate)
            Fail(3, $"rank {Rank} of {Size}: NCCL {c.Op} of {c.What} waited {waited.TotalSeconds:F1} s for the other ranks (timeout {Timeout.TotalSeconds:F0} s): " +
                "a rank is lost or hung. Aborting NCCL (ncclCommAbort) and every rank.");
    }

    /// <summary>ncclCommAbort, then the bootstrap's Abort (which ends every rank; if it returns, as a test's may, this throws).</summary>
    NcclResult Fail(int code, string message) => Fail<NcclResult>(code, message);

    T Fail<T>(int code, string message)
    {
        AbortComm();
        _bootstrap.Abort(code, message);
        throw new DistributedException(message);
    }

    void AbortComm()
    {
        if (_comm == 0 || _aborted) return;
        _aborted = true;
        _nccl.CommAbort(_comm);
    }

    string Describe(NcclResult r, nint comm)
    {
        string last = r == NcclResult.Success ? "" : _nccl.LastError(comm);
        return $"{NcclNative.Name(r)} ({(int)r}): {_nccl.ErrorString(r)}{(last.Length > 0 ? $"; NCCL says: {last.TrimEnd()}" : "")}";
    }

    /// <summary>
    /// ncclCommFinalize (which completes what was issued and waits for the other ranks' finalize), polled up to the
    /// timeout, then ncclCommDestroy; ncclCommAbort instead when that fails. Never the bootstrap: the caller owns it.
    /// </summary>
    public override void Dispose()
    {
        if (_disposed) return;
        lock (_gate)
        {
            _disposed = true;
            if (_comm != 0 && !_aborted)
            {
                try
                {
                    _cuda.CommunicationStream();
                    var r = _nccl.CommFinalize(_comm);
                    if (r == NcclResult.InProgress) r = PollInProgress() ?? NcclResult.InProgress;
                    if (r == NcclResult.Success) _nccl.CommDestroy(_comm);
                    else
                    {
                        Console.Error.WriteLine($"rank {Rank}: NCCL: ncclCommFinalize ended with {Describe(r, _comm)}; aborting the communicator (ncclCommAbort) instead.");
                        AbortComm();
                    }
                }
                catch (CudaException e)
                {
                    Console.Error.WriteLine($"rank {Rank}: NCCL: the device failed while the communicator was being destroyed: {e.Message}");
                    AbortComm();
                }
            }
            _comm = 0;
        }
        base.Dispose();
    }

    /// <summary>A collective in flight: its completion event on the communication stream.</summary>
    sealed class Collective(NcclCommunicator owner, string op, string what, nint evt) : PendingReduction
    {
        public string Op => op;
        public string What => what;
        public nint Event => evt;
        public bool Done { get; set; }

        public override bool Test() => owner.Poll(this);

        public override void Wait()
        {
            long start = Stopwatch.GetTimestamp();
            while (!Test())
            {
                var waited = Stopwatch.GetElapsedTime(start);
                if (waited > owner.Timeout) owner.TimedOut(this, waited);
                Pause(waited);
            }
        }
    }
}
