using Sbp.Distributed;
using Sbp.Tensors;

namespace Sbp.CudaSim;

/// <summary>
/// A simulated NCCL: several simulated GPUs of one process as the ranks of a group, each rank a thread with its own
/// device, so <see cref="NcclCommunicator"/> (and <see cref="DataParallel"/> over it) runs without a GPU. The engine's
/// real communicator code runs over <c>SimNcclApi</c>, which behaves as nccl.h documents for the calls it makes:
/// ncclCommInitRankConfig (nonblocking: ncclInProgress until every rank has joined, on the thread's current device),
/// ncclAllReduce (float32; summed in rank order, so every rank gets the same bits) and ncclBroadcast, each done when the
/// last rank issues it, on the device's communication stream only; ncclCommGetAsyncError, ncclCommFinalize (done when
/// every rank finalized and nothing is in flight), ncclCommDestroy and ncclCommAbort. Ranks that issue different
/// collectives at the same point, or a send buffer written while its collective is in flight, give an asynchronous
/// ncclInvalidUsage naming both. Host collectives go through a bootstrap of rendezvous between the threads (what MPI is
/// under mpirun). A fault can be injected (<see cref="SimulatedNcclOptions.Fault"/>), and an abort calls
/// <see cref="SimulatedNcclOptions.OnAbort"/> instead of ending the process.
/// </summary>
public static class SimulatedNccl
{
    /// <summary>A group of <paramref name="size"/> new simulated GPUs ("cuda-sim:0", ...).</summary>
    public static SimulatedNcclGroup CreateGroup(int size, SimulatedNcclOptions? options = null)
    {
        if (size < 1) throw new ArgumentOutOfRangeException(nameof(size), size, "SimulatedNccl: a group has at least one rank.");
        return CreateGroup(Enumerable.Range(0, size).Select(r => SimulatedCuda.CreateDevice($"cuda-sim:{r}")).ToList(), options);
    }

    /// <summary>A group over existing simulated devices, rank r on <paramref name="devices"/>[r].</summary>
    public static SimulatedNcclGroup CreateGroup(IReadOnlyList<Device> devices, SimulatedNcclOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(devices);
        if (devices.Count < 1) throw new ArgumentException("SimulatedNccl: a group has at least one device.", nameof(devices));
        foreach (var d in devices) SimulatedCuda.Api(d);   // throws for a device that is not simulated
        if (devices.Distinct().Count() != devices.Count) throw new ArgumentException("SimulatedNccl: one device per rank (NCCL refuses two ranks on one GPU).", nameof(devices));
        return new SimulatedNcclGroup(devices, options ?? new SimulatedNcclOptions());
    }
}

/// <summary>Settings of a simulated NCCL group.</summary>
public sealed record SimulatedNcclOptions
{
    /// <summary>Every rank's <see cref="Communicator.Timeout"/> (the bootstrap's and the NCCL communicator's).</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Called with (rank, exit code, message) when a rank aborts the group (<see cref="Communicator.Abort"/>), instead of
    /// ending the process. Null: the aborting call throws a <see cref="DistributedException"/> with the message.
    /// </summary>
    public Action<int, int, string>? OnAbort { get; init; }

    /// <summary>A failure to inject, or null.</summary>
    public SimulatedNcclFault? Fault { get; init; }
}

/// <summary>What goes wrong in an injected fault.</summary>
public enum SimulatedNcclFaultKind
{
    /// <summary>The rank's collective is accepted but never joins the others' (a rank that hangs): it never completes anywhere.</summary>
    NeverArrives,
    /// <summary>The rank's communicator gets ncclSystemError asynchronously (as a network failure would) and the collective never completes.</summary>
    AsyncError,
}

/// <summary>Injects <paramref name="Kind"/> at rank <paramref name="Rank"/>'s NCCL collective number <paramref name="Collective"/> (0-based, all-reduces and broadcasts in issue order).</summary>
public sealed record SimulatedNcclFault(int Rank, int Collective, SimulatedNcclFaultKind Kind);

/// <summary>An abort a rank asked for (what would have ended the job).</summary>
public sealed record SimulatedAbort(int Rank, int Code, string Message);

/// <summary>The ranks of a simulated NCCL group: their devices, bootstraps and communicators, and what happened.</summary>
public sealed class SimulatedNcclGroup
{
    readonly IReadOnlyList<ThreadGroupCommunicator> _bootstraps;
    readonly SimNcclApi _api;
    readonly List<SimulatedAbort> _aborts = [];

    internal SimulatedNcclGroup(IReadOnlyList<Device> devices, SimulatedNcclOptions options)
    {
        Devices = devices;
        Options = options;
        _bootstraps = ThreadGroupCommunicator.CreateGroup(devices.Count, options.Timeout, Record);
        _api = new SimNcclApi(this);
    }

    public int Size => Devices.Count;
    public IReadOnlyList<Device> Devices { get; }
    public SimulatedNcclOptions Options { get; }

    /// <summary>Rank <paramref name="rank"/>'s host communicator (threads of this process meeting; what MPI is for real ranks).</summary>
    public Communicator Bootstrap(int rank) => _bootstraps[rank];

    /// <summary>
    /// <see cref="NcclCommunicator.Create(Communicator, Device)"/> for rank <paramref name="rank"/> over the simulated
    /// NCCL; every rank calls it on its own thread (joining is collective).
    /// </summary>
    public NcclCommunicator CreateCommunicator(int rank) => NcclCommunicator.Create(_bootstraps[rank], Devices[rank], _api);

    /// <summary>
    /// Runs <paramref name="body"/> once per rank, each on its own thread with its own communicator (disposed after),
    /// and returns the results by rank; rethrows the exception of the rank that failed first.
    /// </summary>
    public T[] Run<T>(Func<NcclCommunicator, T> body)
    {
        ArgumentNullException.ThrowIfNull(body);
        return ThreadGroupCommunicator.RunThreads(Size, r =>
        {
            using var comm = CreateCommunicator(r);
            return body(comm);
        });
    }

    /// <summary>The aborts ranks asked for, in order.</summary>
    public IReadOnlyList<SimulatedAbort> Aborts
    {
        get { lock (_aborts) return _aborts.ToList(); }
    }

    /// <summary>ncclCommAbort calls, by rank.</summary>
    public IReadOnlyList<int> CommAborts => _api.CommAborts;

    /// <summary>Collectives every rank completed (all-reduces and broadcasts).</summary>
    public int CompletedCollectives => _api.Completed;

    /// <summary>A rank's abort: recorded, told to <see cref="SimulatedNcclOptions.OnAbort"/> (the bootstrap then throws on that rank).</summary>
    void Record(int rank, int code, string message)
    {
        lock (_aborts) _aborts.Add(new SimulatedAbort(rank, code, message));
        Options.OnAbort?.Invoke(rank, code, message);
    }
}
