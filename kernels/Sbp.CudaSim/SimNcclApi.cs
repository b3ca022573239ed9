using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Sbp.Distributed.Nccl;

namespace Sbp.CudaSim;

/// <summary>
/// <see cref="INcclApi"/> for the ranks of a <see cref="SimulatedNcclGroup"/> (threads of one process, one simulated
/// GPU each). A collective is deferred work on the issuing device's communication stream; the rank that issues it
/// last computes it from every rank's input (read when each rank issued it, as the stream would) and completes it on
/// every device. Results and failures follow nccl.h's codes (see <see cref="SimulatedNccl"/>); the last error's words
/// imitate NCCL's own where NCCL has them.
/// </summary>
internal sealed unsafe class SimNcclApi(SimulatedNcclGroup group) : INcclApi
{
    static readonly byte[] IdMagic = "SBPSIMNC"u8.ToArray();
    static long _nextGroup;

    sealed class Comm(nint handle, int rank, Clique clique, SimCudaApi device, bool blocking)
    {
        public readonly nint Handle = handle;
        public readonly int Rank = rank;
        public readonly Clique Clique = clique;
        public readonly SimCudaApi Device = device;
        public readonly bool Blocking = blocking;
        public readonly List<SimStreamWork> Work = [];
        public NcclResult State = NcclResult.InProgress;
        public string LastError = "";
        public long Issued;
        public bool Finalizing, Aborted, Destroyed;
    }

    sealed class Clique(int size)
    {
        public readonly Comm?[] Members = new Comm?[size];
        public readonly Dictionary<long, Part?[]> Ops = [];
        public int Joined;
    }

    sealed record Part(Comm Comm, string Kind, ulong Send, ulong Receive, ulong Count, NcclDataType Type, NcclRedOp Op, int Root, byte[]? Input, SimStreamWork Work)
    {
        public long Bytes => checked((long)Count * TypeSize(Type));
    }

    readonly object _gate = new();
    readonly long _group = Interlocked.Increment(ref _nextGroup);
    readonly Dictionary<long, Clique> _cliques = [];
    readonly Dictionary<nint, Comm> _comms = [];
    readonly int[] _commAborts = new int[group.Size];
    long _nextClique;
    int _completed;
    [ThreadStatic] static string? _lastError;

    public string Description => $"simulated NCCL ({group.Size} simulated GPU(s) in this process)";
    public int Version => 23007;
    public IReadOnlyList<int> CommAborts { get { lock (_gate) return _commAborts.ToArray(); } }
    public int Completed { get { lock (_gate) return _completed; } }

    NcclResult Error(NcclResult r, string words, Comm? comm = null)
    {
        _lastError = words;
        if (comm is not null) comm.LastError = words;
        return r;
    }

    public NcclResult GetUniqueId(out NcclUniqueId id)
    {
        var bytes = new byte[NcclUniqueId.Bytes];
        IdMagic.CopyTo(bytes, 0);
        BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(8), _group);
        BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(16), Interlocked.Increment(ref _nextClique));
        id = NcclUniqueId.FromBytes(bytes);
        return NcclResult.Success;
    }

    public NcclResult CommInitRankConfig(out nint comm, int ranks, NcclUniqueId id, int rank, in NcclConfig config)
    {
        comm = 0;
        if (config.Magic != NcclConfig.ApiMagic) return Error(NcclResult.InvalidArgument, "ncclConfig_t argument not initialized via NCCL_CONFIG_INITIALIZER");
        if (config.Size < (nuint)sizeof(NcclConfig) || config.Version < NcclConfig.LayoutVersion)
            return Error(NcclResult.InvalidArgument, $"simulated NCCL: ncclConfig_t of {config.Size} bytes, version {config.Version}: the 2.14 layout (24 bytes, 21400) or later is required");
        if (config.Blocking is not (0 or 1)) return Error(NcclResult.InvalidArgument, $"Invalid config blocking attribute value {config.Blocking}");
        if (ranks < 1 || rank < 0 || rank >= ranks) return Error(NcclResult.InvalidArgument, $"Invalid rank requested : {rank}/{ranks}");
        var device = SimCudaApi.CurrentOnThread;
        if (device is null)
            return Error(NcclResult.InvalidUsage, "simulated NCCL: no simulated device is current on this thread (NCCL joins on the current device: make it current first)");
        var bytes = id.ToBytes();
        if (!bytes.AsSpan(0, 8).SequenceEqual(IdMagic) || BinaryPrimitives.ReadInt64LittleEndian(bytes.AsSpan(8)) != _group)
            return Error(NcclResult.InvalidArgument, "simulated NCCL: the unique id did not come from this group's ncclGetUniqueId");
        long key = BinaryPrimitives.ReadInt64LittleEndian(bytes.AsSpan(16));
        Comm c;
        lock (_gate)
        {
            if (!_cliques.TryGetValue(key, out var clique)) _cliques[key] = clique = new Clique(ranks);
            if (clique.Members.Length != ranks)
                return Error(NcclResult.InvalidUsage, $"simulated NCCL: rank {rank} joins with {ranks} ranks, an earlier rank with {clique.Members.Length}");
            if (clique.Members[rank] is not null) return Error(NcclResult.InvalidUsage, $"simulated NCCL: rank {rank} joined twice");
            if (Array.FindIndex(clique.Members, m => m?.Device == device) is int dup and >= 0)
                return Error(NcclResult.InvalidUsage, $"Duplicate GPU detected : rank {dup} and rank {rank} both on the same simulated device");
            c = new Comm((nint)(0x5CC0_0000 + _comms.Count + 1), rank, clique, device, config.Blocking == 1);
            _comms[c.Handle] = c;
            clique.Members[rank] = c;
            if (++clique.Joined == ranks)
                foreach (var m in clique.Members) m!.State = NcclResult.Success;
            comm = c.Handle;
        }
        return c.Blocking ? WaitWhileInProgress(c) : NcclResult.InProgress;
    }

    /// <summary>A blocking communicator's call: waits (at most the group's timeout, where NCCL would wait forever).</summary>
    NcclResult WaitWhileInProgress(Comm c)
    {
        var deadline = DateTime.UtcNow + group.Options.Timeout;
        while (true)
        {
            lock (_gate)
                if (c.State != NcclResult.InProgress) return c.State;
            if (DateTime.UtcNow > deadline) return Error(NcclResult.InternalError, "simulated NCCL: a blocking call waited past the group's timeout (NCCL would hang)", c);
            Thread.Sleep(1);
        }
    }

    public NcclResult AllReduce(ulong send, ulong receive, ulong count, NcclDataType type, NcclRedOp op, nint comm, nint stream)
    {
        if (type != NcclDataType.Float32) return Error(NcclResult.InvalidArgument, $"simulated NCCL: ncclAllReduce of {type} is not simulated (float32 only)");
        if (op is < NcclRedOp.Sum or > NcclRedOp.Avg) return Error(NcclResult.InvalidArgument, $"Invalid op {(int)op}");
        return Issue("ncclAllReduce", send, receive, count, type, op, 0, comm, stream);
    }

    public NcclResult Broadcast(ulong send, ulong receive, ulong count, NcclDataType type, int root, nint comm, nint stream) =>
        Issue("ncclBroadcast", send, receive, count, type, NcclRedOp.Sum, root, comm, stream);

    NcclResult Issue(string kind, ulong send, ulong receive, ulong count, NcclDataType type, NcclRedOp op, int root, nint handle, nint stream)
    {
        lock (_gate)
        {
            if (!_comms.TryGetValue(handle, out var c) || c.Destroyed) return Error(NcclResult.InvalidArgument, $"{kind}: invalid communicator");
            if (c.Aborted) return Error(NcclResult.InvalidUsage, $"{kind}: the communicator was aborted", c);
            if (c.State == NcclResult.InProgress)
                return Error(NcclResult.InvalidArgument, "Attempt to use communicator before the previous operation returned ncclSuccess", c);
            if (c.State != NcclResult.Success) return c.State;
            if (stream == 0 || stream != c.Device.CommunicationStreamHandle)
                return Error(NcclResult.InvalidArgument, $"simulated NCCL: {kind} on stream {stream}, not the communication stream of the communicator's device " +
                    "(the simulator runs collectives on ICudaApi.CommunicationStream only)", c);
            if (root < 0 || root >= c.Clique.Members.Length) return Error(NcclResult.InvalidArgument, $"{kind}: invalid root {root}", c);
            long bytes = checked((long)count * TypeSize(type));
            long seq = c.Issued++;
            var work = new SimStreamWork($"{kind} #{seq} of rank {c.Rank}");
            c.Device.EnqueueCommunication(work);
            c.Work.Add(work);
            if (group.Options.Fault is { } f && f.Rank == c.Rank && f.Collective == seq)
            {
                if (f.Kind == SimulatedNcclFaultKind.AsyncError)
                {
                    c.State = NcclResult.SystemError;
                    c.LastError = $"simulated fault: rank {c.Rank}'s {kind} #{seq} lost its network connection";
                }
                return NcclResult.Success;   // NeverArrives: accepted, never joins the others
            }
            // The input as the stream will read it: now, unless an earlier collective of this stream is still in flight
            // (it may write this buffer; then it is read when every rank has issued this one, after the earlier one).
            byte[]? input;
            try
            {
                input = c.Work.Take(c.Work.Count - 1).All(w => w.IsDone) ? Read(c.Device, send, bytes) : null;
                Read(c.Device, receive, bytes);   // bounds check
            }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException or IndexOutOfRangeException)
            {
                return Error(NcclResult.InvalidArgument, $"{kind}: a buffer of {bytes} bytes at 0x{send:x} / 0x{receive:x} is not device memory: {e.Message}", c);
            }
            var part = new Part(c, kind, send, receive, count, type, op, root, input, work);
            if (!c.Clique.Ops.TryGetValue(seq, out var parts)) c.Clique.Ops[seq] = parts = new Part?[c.Clique.Members.Length];
            parts[c.Rank] = part;
            if (parts.FirstOrDefault(p => p is not null && !ReferenceEquals(p, part)) is { } other &&
                (other.Kind != kind || other.Count != count || other.Type != type || other.Op != op || other.Root != root))
            {
                string words = $"simulated NCCL: collective #{seq} is {Describe(part)} on rank {c.Rank} but {Describe(other)} on rank {other.Comm.Rank}: " +
                    "every rank must issue the same collectives in the same order";
                foreach (var m in c.Clique.Members)
                    if (m is not null) Error(m.State = NcclResult.InvalidUsage, words, m);
                return NcclResult.Success;
            }
            if (parts.All(p => p is not null))
            {
                c.Clique.Ops.Remove(seq);
                Complete(parts!);
            }
            return NcclResult.Success;
        }
    }

    static string Describe(Part p) => $"{p.Kind}(count {p.Count}, {p.Type}{(p.Kind == "ncclBroadcast" ? $", root {p.Root}" : $", {p.Op}")})";

    /// <summary>Every rank issued it: the result in every receive buffer, summed in rank order.</summary>
    void Complete(Part[] parts)
    {
        var inputs = new byte[parts.Length][];
        foreach (var p in parts)
        {
            var now = Read(p.Comm.Device, p.Send, p.Bytes);
            if (p.Input is not null && !now.AsSpan().SequenceEqual(p.Input))
                Error(p.Comm.State = NcclResult.InvalidUsage, $"simulated NCCL: rank {p.Comm.Rank}'s send buffer of {p.Kind} changed while it was in flight " +
                    "(written by the compute stream before the collective completed)", p.Comm);
            inputs[p.Comm.Rank] = p.Input ?? now;
        }
        byte[] result;
        if (parts[0].Kind == "ncclBroadcast") result = inputs[parts[0].Root];
        else
        {
            var sum = MemoryMarshal.Cast<byte, float>(inputs[0]).ToArray();
            for (int r = 1; r < parts.Length; r++)
            {
                var x = MemoryMarshal.Cast<byte, float>(inputs[r]);
                for (int i = 0; i < sum.Length; i++)
                    sum[i] = parts[0].Op switch
                    {
                        NcclRedOp.Prod => sum[i] * x[i],
                        NcclRedOp.Max => MathF.Max(sum[i], x[i]),
                        NcclRedOp.Min => MathF.Min(sum[i], x[i]),
                        _ => sum[i] + x[i],
                    };
            }
            if (parts[0].Op == NcclRedOp.Avg)
                for (int i = 0; i < sum.Length; i++) sum[i] /= parts.Length;
            result = MemoryMarshal.AsBytes(sum.AsSpan()).ToArray();
        }
        foreach (var p in parts)
        {
            p.Comm.Device.WriteDeviceBytes(p.Receive, result);   // the device's own work: not a host transfer
            p.Work.Complete();
        }
        _completed++;
    }

    static byte[] Read(SimCudaApi device, ulong address, long bytes)
    {
        var a = new byte[bytes];
        device.ReadDeviceBytes(address, a);
        return a;
    }

    static int TypeSize(NcclDataType t) => t switch
    {
        NcclDataType.Int8 or NcclDataType.Uint8 or NcclDataType.Float8e4m3 or NcclDataType.Float8e5m2 => 1,
        NcclDataType.Float16 or NcclDataType.Bfloat16 => 2,
        NcclDataType.Int32 or NcclDataType.Uint32 or NcclDataType.Float32 => 4,
        _ => 8,
    };

    public NcclResult CommGetAsyncError(nint handle, out NcclResult asyncError)
    {
        lock (_gate)
        {
            asyncError = NcclResult.Success;
            if (!_comms.TryGetValue(handle, out var c) || c.Destroyed || c.Aborted) return Error(NcclResult.InvalidArgument, "ncclGetAsyncError: invalid communicator");
            asyncError = c.State;
            return NcclResult.Success;
        }
    }

    public NcclResult CommFinalize(nint handle)
    {
        Comm c;
        lock (_gate)
        {
            if (!_comms.TryGetValue(handle, out c!) || c.Destroyed || c.Aborted) return Error(NcclResult.InvalidArgument, "ncclCommFinalize: invalid communicator");
            if (c.Finalizing) return Error(NcclResult.InvalidArgument, "ncclCommFinalize: called twice", c);
            if (c.State != NcclResult.Success) return c.State == NcclResult.InProgress
                ? Error(NcclResult.InvalidArgument, "Attempt to use communicator before the previous operation returned ncclSuccess", c) : c.State;
            c.Finalizing = true;
            c.State = NcclResult.InProgress;
            var members = c.Clique.Members;
            if (Array.Find(members, m => m is { Aborted: true }) is { } gone)
                Error(c.State = NcclResult.RemoteError, $"simulated NCCL: rank {gone.Rank} aborted its communicator; ncclCommFinalize cannot meet it", c);
            else if (members.All(m => m is { Finalizing: true } && m.Work.All(w => w.IsDone)))
                foreach (var m in members) m!.State = NcclResult.Success;
        }
        return c.Blocking ? WaitWhileInProgress(c) : NcclResult.InProgress;
    }

    public NcclResult CommDestroy(nint handle)
    {
        lock (_gate)
        {
            if (!_comms.TryGetValue(handle, out var c) || c.Destroyed) return Error(NcclResult.InvalidArgument, "comm has already been destroyed");
            c.Destroyed = true;
            return NcclResult.Success;
        }
    }

    public NcclResult CommAbort(nint handle)
    {
        lock (_gate)
        {
            if (!_comms.TryGetValue(handle, out var c) || c.Destroyed) return NcclResult.Success;
            c.Aborted = true;
            _commAborts[c.Rank]++;
            foreach (var w in c.Work.Where(w => !w.IsDone)) w.Abort();   // the device's collective kernels are stopped
            c.Destroyed = true;
            foreach (var m in c.Clique.Members)   // a peer waiting in ncclCommFinalize for this rank hears that it is gone
                if (m is { Finalizing: true, State: NcclResult.InProgress })
                    Error(m.State = NcclResult.RemoteError, $"simulated NCCL: rank {c.Rank} aborted its communicator; ncclCommFinalize cannot meet it", m);
            return NcclResult.Success;
        }
    }

    /// <summary>ncclGetErrorString's words (NVIDIA/nccl src/init.cc).</summary>
    public string ErrorString(NcclResult result) => result switch
    {
        NcclResult.Success => "no error",
        NcclResult.UnhandledCudaError => "unhandled cuda error (run with NCCL_DEBUG=INFO for details)",
        NcclResult.SystemError => "unhandled system error (run with NCCL_DEBUG=INFO for details)",
        NcclResult.InternalError => "internal error - please report this issue to the NCCL developers",
        NcclResult.InvalidArgument => "invalid argument (run with NCCL_DEBUG=WARN for details)",
        NcclResult.InvalidUsage => "invalid usage (run with NCCL_DEBUG=WARN for details)",
        NcclResult.RemoteError => "remote process exited or there was a network error",
        NcclResult.InProgress => "NCCL operation in progress",
        NcclResult.Timeout => "timeout",
        _ => "unknown result code",
    };

    public string LastError(nint handle)
    {
        lock (_gate)
            return _comms.TryGetValue(handle, out var c) && c.LastError.Length > 0 ? c.LastError : _lastError ?? "";
    }
}
