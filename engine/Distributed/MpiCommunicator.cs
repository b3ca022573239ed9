using System.Diagnostics;
using Sbp.Tensors;

namespace Sbp.Distributed;

/// <summary>
/// The ranks of an <c>mpirun</c> launch over Open MPI (MPI_COMM_WORLD), for tensors in host memory (Debian's Open MPI is not
/// CUDA-aware: GPU tensors go through <see cref="NcclCommunicator"/>). Every collective is non-blocking underneath
/// (MPI_Iallreduce, MPI_Ibcast, MPI_Ibarrier) and waited for by testing with a deadline, so a lost or hung rank ends
/// the job (<see cref="Communicator.Timeout"/>, then MPI_Abort) instead of hanging it; errors return as codes (MPI_ERRORS_RETURN).
/// </summary>
public sealed unsafe class MpiCommunicator : Communicator
{
    /// <summary>Elements per MPI call (MPI counts are int).</summary>
    const int MaxCount = 1 << 30;
    readonly bool _initializedHere;
    bool _disposed;

    /// <summary>Initializes MPI (MPI_Init_thread, serialized threads) unless something in this process already did.</summary>
    public MpiCommunicator()
    {
        OpenMpi.Load();
        int flag, provided;
        OpenMpi.Check(OpenMpi.Finalized(&flag), "MPI_Finalized", "start-up");
        if (flag != 0) throw new DistributedException("MPI: MPI_Finalize already ran in this process; MPI cannot start again (one MpiCommunicator per process).");
        OpenMpi.Check(OpenMpi.Initialized(&flag), "MPI_Initialized", "start-up");
        if (flag == 0)
        {
            OpenMpi.Check(OpenMpi.InitThread(null, null, OpenMpi.ThreadSerialized, &provided), "MPI_Init_thread", "start-up");
            _initializedHere = true;
            if (provided < OpenMpi.ThreadSerialized)
                throw new DistributedException($"MPI: the library gives thread level {provided}; the engine needs MPI_THREAD_SERIALIZED (2) or more.");
        }
        OpenMpi.Check(OpenMpi.CommSetErrhandler(OpenMpi.CommWorld, OpenMpi.ErrorsReturn), "MPI_Comm_set_errhandler", "start-up");
        int rank, size;
        OpenMpi.Check(OpenMpi.CommRank(OpenMpi.CommWorld, &rank), "MPI_Comm_rank", "start-up");
        OpenMpi.Check(OpenMpi.CommSize(OpenMpi.CommWorld, &size), "MPI_Comm_size", "start-up");
        Rank = rank;
        Size = size;
        Library = OpenMpi.Version();
    }

    /// <summary>True when this process was started by Open MPI's mpirun (OMPI_COMM_WORLD_SIZE is set).</summary>
    public static bool LaunchedByMpirun => Environment.GetEnvironmentVariable("OMPI_COMM_WORLD_SIZE") is { Length: > 0 };

    /// <summary>True when another MPI's launcher (MPICH's or Intel's mpiexec, Slurm's PMI) started this process.</summary>
    public static bool LaunchedByOtherMpi => !LaunchedByMpirun && (Environment.GetEnvironmentVariable("PMI_RANK") ?? Environment.GetEnvironmentVariable("PMIX_RANK")) is { Length: > 0 };

    /// <summary>The rank mpirun gave this process (OMPI_COMM_WORLD_RANK), known before MPI starts; 0 when not under mpirun.</summary>
    public static int LaunchRank => LaunchNumber("OMPI_COMM_WORLD_RANK", 0);

    /// <summary>This rank's index among the ranks on its node (OMPI_COMM_WORLD_LOCAL_RANK; 0 when unknown): its GPU with NCCL.</summary>
    public static int LocalRank => LaunchNumber("OMPI_COMM_WORLD_LOCAL_RANK", 0);

    /// <summary>How many ranks run on this node (OMPI_COMM_WORLD_LOCAL_SIZE; 1 when unknown).</summary>
    public static int LocalSize => Math.Max(1, LaunchNumber("OMPI_COMM_WORLD_LOCAL_SIZE", 1));

    /// <summary>A number mpirun puts in the environment of each rank, or <paramref name="fallback"/> when it is missing or negative.</summary>
    static int LaunchNumber(string variable, int fallback) =>
        int.TryParse(Environment.GetEnvironmentVariable(variable), out int n) && n >= 0 ? n : fallback;

    public override int Rank { get; }
    public override int Size { get; }
    public override string Engine => "mpi";

    /// <summary>The MPI library's version line.</summary>
    public string Library { get; }

    public override PendingReduction StartAllReduce(Tensor buffer, string what)
    {
        var p = HostPointer(buffer, "all-reduce", what);
        var requests = new List<nint>();
        for (long at = 0; at < buffer.Numel; at += MaxCount)
        {
            nint request;
            OpenMpi.Check(OpenMpi.Iallreduce(OpenMpi.InPlace, (float*)p + at, (int)Math.Min(MaxCount, buffer.Numel - at), OpenMpi.Float, OpenMpi.OpSum, OpenMpi.CommWorld, &request),
                "MPI_Iallreduce", what);
            requests.Add(request);
        }
        return new Requests(this, requests, what);
    }

    public override void AllReduce(Span<double> values, string what)
    {
        nint request;
        fixed (double* p = values)
        {
            OpenMpi.Check(OpenMpi.Iallreduce(OpenMpi.InPlace, p, values.Length, OpenMpi.Double, OpenMpi.OpSum, OpenMpi.CommWorld, &request), "MPI_Iallreduce", what);
            new Requests(this, [request], what).Wait();
        }
    }

    public override void Broadcast(Tensor tensor, int root, string what) =>
        Broadcast(new Span<byte>((void*)HostPointer(tensor, "broadcast", what), checked((int)tensor.Bytes)), root, what);

    public override void Broadcast(Span<byte> bytes, int root, string what)
    {
        CheckRoot(root);
        var requests = new List<nint>();
        fixed (byte* p = bytes)
        {
            for (long at = 0; at < bytes.Length; at += MaxCount)
            {
                nint request;
                OpenMpi.Check(OpenMpi.Ibcast(p + at, (int)Math.Min(MaxCount, bytes.Length - at), OpenMpi.Byte, root, OpenMpi.CommWorld, &request), "MPI_Ibcast", what);
                requests.Add(request);
            }
            new Requests(this, requests, what).Wait();
        }
    }

    public override void Barrier(string what)
    {
        nint request;
        OpenMpi.Check(OpenMpi.Ibarrier(OpenMpi.CommWorld, &request), "MPI_Ibarrier", what);
        new Requests(this, [request], what).Wait();
    }

    public override void Abort(int code, string message)
    {
        Console.Error.WriteLine(message);
        Console.Error.Flush();
        OpenMpi.Abort(OpenMpi.CommWorld, code);
        Environment.Exit(code);   // not reached: MPI_Abort ends the job
    }

    nint HostPointer(Tensor t, string op, string what)
    {
        if (t.Device.Kind != DeviceKind.Cpu)
            throw new ArgumentException($"MPI {op} of {what}: the tensor {t.Shape} is on {t.Device}; Open MPI here reduces host memory only. Use --dist nccl for GPU tensors.");
        if (t.DType != DType.Float32 && op == "all-reduce")
            throw new ArgumentException($"MPI all-reduce of {what}: the tensor is {t.DType}; the engine sums float32 buffers.");
        return t.Pointer;
    }

    void CheckRoot(int root)
    {
        if (root < 0 || root >= Size) throw new ArgumentOutOfRangeException(nameof(root), root, $"MPI broadcast: root must be a rank in 0..{Size - 1}.");
    }

    /// <summary>
    /// MPI requests tested until complete. MPI progresses non-blocking collectives only inside MPI calls, so
    /// <see cref="Test"/> (called after each op's backward during data-parallel training) moves them on.
    /// Waiting tests as fast as it can for a second, yielding the core to any other thread between tries (each test
    /// moves a large all-reduce on by one segment: sleeping between them made a 6 MB all-reduce take 40 ms instead of 5),
    /// then sleeps a millisecond per try, so a rank waiting long for a slow peer does not take a core from it.
    /// </summary>
    sealed class Requests(MpiCommunicator owner, List<nint> requests, string what) : PendingReduction
    {
        int _done;

        public override bool Test()
        {
            while (_done < requests.Count)
            {
                nint r = requests[_done];
                int flag;
                OpenMpi.Check(OpenMpi.Test(&r, &flag, null), "MPI_Test", what);
                if (flag == 0) return false;
                requests[_done++] = r;
            }
            return true;
        }

        public override void Wait()
        {
            long start = Stopwatch.GetTimestamp();
            while (!Test())
            {
                var waited = Stopwatch.GetElapsedTime(start);
                if (waited > owner.Timeout)
                    owner.Abort(3, $"rank {owner.Rank}: {what} waited {waited.TotalSeconds:F0} s for the other ranks of {owner.Size} (timeout {owner.Timeout.TotalSeconds:F0} s): " +
                        "a rank is lost or hung. Ending every rank (MPI_Abort).");
                if (waited.TotalSeconds < 1) Thread.Yield();
                else Thread.Sleep(1);
            }
        }
    }

    public override void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        int finalized;
        if (_initializedHere && OpenMpi.Finalized(&finalized) == OpenMpi.Success && finalized == 0) OpenMpi.Finalize();
        base.Dispose();
    }
}
