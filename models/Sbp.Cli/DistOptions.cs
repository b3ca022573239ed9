using System.CommandLine;
using Sbp.Distributed;

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

    /// <summary>The ranks this process trains with (a single process for none).</summary>
    public Communicator Open(ParseResult r, string engine)
    {
        Communicator comm = engine switch
        {
            "mpi" or "nccl" => new MpiCommunicator(),
            _ => new SingleProcessCommunicator(),
        };
        comm.Timeout = TimeSpan.FromSeconds(r.GetValue(Timeout));
        if (comm.Size > 1 && comm.IsRoot && Environment.GetEnvironmentVariable("DOTNET_PROCESSOR_COUNT") is null && MpiCommunicator.LocalSize > 1)
            Console.WriteLine($"note: {MpiCommunicator.LocalSize} ranks share this node's {Environment.ProcessorCount} cores and each uses all of them; " +
                $"give each its share with mpirun -x DOTNET_PROCESSOR_COUNT={Math.Max(1, Environment.ProcessorCount / MpiCommunicator.LocalSize)}.");
        return comm;
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
