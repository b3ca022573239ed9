using System.CommandLine;
using Sbp.Distributed;
using Sbp.Tensors;

namespace Sbp.Cli;

/// <summary>
/// Data parallelism for train and compare: which engine connects the ranks (`--dist`), how long a rank waits for the
/// others (`--dist-timeout`), and a guard that ends every rank when one fails alone (otherwise the others would wait).
/// </summary>
public sealed class DistOptions
{
    public readonly Option<string> Dist = new("--dist")
    {
        Description = "data parallelism: auto (mpi when started by Open MPI's mpirun, else none), none, mpi (Open MPI: CPU ranks), " +
            "nccl (one GPU per rank, NCCL for gradients, started by mpirun)",
        DefaultValueFactory = _ => "auto",
    };

    public readonly Option<int> Timeout = new("--dist-timeout")
    {
        Description = "seconds a rank waits for the others in one collective before ending every rank (a lost or hung rank)",
        DefaultValueFactory = _ => 300,
    };

    public Option[] All => [Dist, Timeout];

    /// <summary>The engine `--dist` names, checked before any work: "none", "mpi" or "nccl".</summary>
    public string Engine(ParseResult r)
    {
        if (r.GetValue(Timeout) < 1) throw new ArgumentException($"--dist-timeout {r.GetValue(Timeout)}: must be at least 1 second.");
        var dist = r.GetValue(Dist)!.Trim().ToLowerInvariant();
        if (dist == "auto")
        {
            if (MpiCommunicator.LaunchedByOtherMpi)
                throw new ArgumentException("--dist auto: this process was started by an MPI launcher other than Open MPI's mpirun (PMI_RANK is set); " +
                    "the engine binds Open MPI's ABI only. Start it with Open MPI's mpirun, or pass --dist none to train alone.");
            return MpiCommunicator.LaunchedByMpirun ? "mpi" : "none";
        }
        if (dist is not ("none" or "mpi" or "nccl")) throw new ArgumentException($"--dist '{dist}' is not auto, none, mpi or nccl.");
        if (dist != "none" && !MpiCommunicator.LaunchedByMpirun)
            throw new ArgumentException($"--dist {dist}: this process was not started by Open MPI's mpirun (OMPI_COMM_WORLD_SIZE is not set). " +
                "Launch with: mpirun -np 2 sbp train ... (as root add --allow-run-as-root), or pass --dist none.");
        return dist;
    }

    /// <summary>
    /// The ranks this process trains with (a single process for none) and the device it trains on: with nccl,
    /// GPU cuda:&lt;local rank&gt; (one rank per GPU), Open MPI starting the ranks and carrying NCCL's unique id.
    /// </summary>
    public DistSession Open(ParseResult r, string engine, Device device)
    {
        var timeout = TimeSpan.FromSeconds(r.GetValue(Timeout));
        if (engine == "none") return new DistSession(new SingleProcessCommunicator(), null, device);
        if (engine == "nccl" && device.Kind != DeviceKind.Cuda)
            throw new ArgumentException($"--dist nccl: the device is {device.Name}; NCCL connects GPUs. Pass --device cuda (rank r uses cuda:<local rank>), or --dist mpi for CPU ranks.");
        var mpi = new MpiCommunicator { Timeout = timeout };
        try
        {
            if (mpi.Size > 1 && mpi.IsRoot && engine == "mpi" && Environment.GetEnvironmentVariable("DOTNET_PROCESSOR_COUNT") is null && MpiCommunicator.LocalSize > 1)
                Console.WriteLine($"note: {MpiCommunicator.LocalSize} ranks share this node's {Environment.ProcessorCount} cores and each uses all of them; " +
                    $"give each its share with mpirun -x DOTNET_PROCESSOR_COUNT={Math.Max(1, Environment.ProcessorCount / MpiCommunicator.LocalSize)}.");
            if (engine == "mpi") return new DistSession(mpi, null, device);
            var gpu = Device.Resolve($"cuda:{MpiCommunicator.LocalRank}");
            return new DistSession(NcclCommunicator.Create(mpi, gpu), mpi, gpu);
        }
        catch
        {
            mpi.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Runs a command's body; when it fails on this rank alone (anything but a disagreement all ranks found, or a stop
    /// they agreed on), reports the error and ends every rank (MPI_Abort) so none waits for it until the timeout.
    /// </summary>
    public static int Guard(Communicator comm, string command, Func<int> body)
    {
        try { return body(); }
        catch (Exception e) when (comm.Size > 1 && e is not (DistributedMismatchException or OperationCanceledException))
        {
            int code = SbpCli.Report(e, $"{command} (rank {comm.Rank})", Console.Error);
            comm.Abort(code, $"{command}: rank {comm.Rank} of {comm.Size} failed; ending every rank.");
            return code;
        }
    }
}

/// <summary>A command's ranks: the communicator, the device this rank trains on, and (NCCL) the MPI bootstrap under it, disposed after it.</summary>
public sealed class DistSession(Communicator communicator, Communicator? bootstrap, Device device) : IDisposable
{
    public Communicator Comm { get; } = communicator;
    public Device Device { get; } = device;

    public void Dispose()
    {
        Comm.Dispose();
        bootstrap?.Dispose();
    }
}
