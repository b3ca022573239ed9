using System.Diagnostics;
using System.Text;

namespace Sbp.Models.Tests.Distributed;

/// <summary>
/// `sbp train` over Open MPI processes started by mpirun (2 ranks on this 2-core machine, one core each): the same
/// weights as one process with the whole batch, per-rank masks, ranks that disagree refused, and a lost or hung rank
/// ending the job quickly with the last checkpoint intact. Skipped with the reason when mpirun is missing, unless
/// SBP_REQUIRE_MPI=1 (CI installs Open MPI and sets it).
/// </summary>
[NonParallelizable]
public class MpiLaunchTests
{
    static readonly string Sbp = Path.Combine(AppContext.BaseDirectory, "sbp.dll");

    static string[] Common(string mode, int batch, string dir, int epochs = 1) =>
        ["train", "--model", "swin-nano", "--frames", "4", "--size", "16", "--classes", "3", "--train-count", "80", "--val-count", "6",
         "--epochs", epochs.ToString(), "--workers", "1", "--mode", mode, "--keep", "0.5", "--batch", batch.ToString(), "--out", dir];

    static string? Mpirun() =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Select(d => Path.Combine(d, "mpirun")).FirstOrDefault(File.Exists);

    static string RequireMpirun()
    {
        if (Mpirun() is { } path) return path;
        if (Environment.GetEnvironmentVariable("SBP_REQUIRE_MPI") == "1") Assert.Fail("SBP_REQUIRE_MPI=1 but mpirun is not on PATH (apt-get install openmpi-bin).");
        Assert.Ignore("mpirun not found: install Open MPI (Debian: apt-get install openmpi-bin) to run the multi-process tests.");
        return "";
    }

    sealed record Run(int Code, string Output, TimeSpan Elapsed);

    /// <summary>Starts a command with its output collected; <paramref name="during"/> runs while it goes (e.g. to kill a rank).</summary>
    static Run Start(string file, IEnumerable<string> args, int timeoutSeconds, Action<Process>? during = null)
    {
        var info = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) info.ArgumentList.Add(a);
        var output = new StringBuilder();
        var watch = Stopwatch.StartNew();
        using var p = Process.Start(info)!;
        p.OutputDataReceived += (_, e) => { lock (output) output.AppendLine(e.Data); };
        p.ErrorDataReceived += (_, e) => { lock (output) output.AppendLine(e.Data); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        during?.Invoke(p);
        if (!p.WaitForExit(timeoutSeconds * 1000))
        {
            p.Kill(entireProcessTree: true);
            Assert.Fail($"{file} did not end within {timeoutSeconds} s:\n{output}");
        }
        p.WaitForExit();
        lock (output) return new Run(p.ExitCode, output.ToString(), watch.Elapsed);
    }

    /// <summary>mpirun -np 2 (as root allowed, one core per rank) of sbp with <paramref name="args"/>; or an MPMD line when given.</summary>
    static Run Mpi(IEnumerable<string> args, int timeoutSeconds = 120, Action<Process>? during = null, string marker = "", IEnumerable<string>? second = null)
    {
        var mpi = new List<string> { "--allow-run-as-root", "--oversubscribe", "-x", "DOTNET_PROCESSOR_COUNT=1", "-x", $"SBP_TEST_RUN={marker}" };
        if (second is null) mpi.AddRange(["-np", "2", "dotnet", Sbp, .. args]);
        else mpi.AddRange(["-np", "1", "dotnet", Sbp, .. args, ":", "-np", "1", "dotnet", Sbp, .. second]);
        return Start(RequireMpirun(), mpi, timeoutSeconds, during);
    }

    static Run Single(IEnumerable<string> args) => Start("dotnet", [Sbp, .. args], 120);

    [TestCase("full")]
    [TestCase("sbp")]
    public void TwoProcessesOfBatch8EndWithTheWeightsOfOneProcessOfBatch16AfterFiveSteps(string mode)
    {
        RequireMpirun();
        string one = NewDir(), two = NewDir();
        try
        {
            var single = Single(Common(mode, 16, one));
            Assert.That(single.Code, Is.EqualTo(0), single.Output);
            var pair = Mpi(Common(mode, 8, two));
            Assert.That(pair.Code, Is.EqualTo(0), pair.Output);
            Assert.That(pair.Output, Does.Contain("data parallel over 2 ranks (mpi): batch 8 per rank, 16 in all").And.Contain("1 epoch x 5 steps"));
            Assert.That(pair.Output, Does.Contain("hidden behind backward"));
            DataParallelTrainingTests.AssertSameWeights(one, two, 2e-6f);
        }
        finally { Delete(one, two); }
    }

    [Test]
    public void MasksDrawnPerRankChangeTheUpdateWhileSharedMasksDoNot()
    {
        RequireMpirun();
        string shared = NewDir(), own = NewDir();
        try
        {
            Assert.That(Mpi([.. Common("sbp", 8, shared), "--mask", "strided-random"]).Code, Is.EqualTo(0));
            var perRank = Mpi([.. Common("sbp", 8, own), "--mask", "strided-random", "--masks-per-rank"]);
            Assert.That(perRank.Code, Is.EqualTo(0), perRank.Output);
            Assert.That(perRank.Output, Does.Contain("drawn per rank"));
            var a = DataParallelTrainingTests.Weights(shared);
            var b = DataParallelTrainingTests.Weights(own);
            double most = a.Max(kv => kv.Value.Zip(b[kv.Key]).Max(p => Math.Abs(p.First - p.Second)));
            Assert.That(most, Is.GreaterThan(1e-4), "rank 1 kept other positions, so its gradients and the average differ");
        }
        finally { Delete(shared, own); }
    }

    [Test]
    public void RanksStartedWithDifferentSettingsAreRefusedAtStartNamingTheDifference()
    {
        RequireMpirun();
        string dir = NewDir();
        try
        {
            var run = Mpi([.. Common("sbp", 8, dir), "--lr", "1e-3"], second: [.. Common("sbp", 8, dir), "--lr", "2e-3"]);
            Assert.That(run.Code, Is.EqualTo(2), run.Output);
            Assert.That(run.Output, Does.Contain("rank 1 differs from rank 0").And.Contain("setting LearningRate = 0.001"));
            Assert.That(File.Exists(Path.Combine(dir, "checkpoint.safetensors")), Is.False, "refused before any step");
        }
        finally { Delete(dir); }
    }

    [Test]
    public void Sigusr1ToMpirunStopsEveryRankAfterTheSameStepWithACheckpointAndResumeContinues()
    {
        RequireMpirun();
        string dir = NewDir();
        try
        {
            var checkpoint = Path.Combine(dir, "checkpoint.safetensors");
            string[] args = [.. Common("sbp", 8, dir, epochs: 50)];
            var stopped = Mpi(args, 120, during: p =>
            {
                var wait = Stopwatch.StartNew();
                while (!File.Exists(checkpoint) && wait.Elapsed.TotalSeconds < 90 && !p.HasExited) Thread.Sleep(100);
                Start("kill", ["-USR1", p.Id.ToString()], 10);
            });
            Assert.That(stopped.Code, Is.EqualTo(130), stopped.Output);
            Assert.That(stopped.Output, Does.Contain("SIGUSR1: stopping after this step").And.Contain("interrupted at step").And.Contain("--resume"));
            var resumed = Mpi([.. Common("sbp", 8, dir, epochs: 50), "--resume", "--max-steps", "200"]);
            Assert.That(resumed.Code, Is.EqualTo(0), resumed.Output);
            Assert.That(resumed.Output, Does.Contain("resumed from"));
        }
        finally { Delete(dir); }
    }

    [Test]
    public void CompareUnderMpirunTrainsEveryModeOnBothRanksAndRankZeroPrintsTheTable()
    {
        RequireMpirun();
        var run = Mpi(["compare", "--model", "swin-nano", "--frames", "4", "--size", "16", "--classes", "3", "--train-count", "32", "--val-count", "6",
            "--epochs", "1", "--workers", "1", "--batch", "8", "--modes", "full,sbp:0.5"]);
        Assert.That(run.Code, Is.EqualTo(0), run.Output);
        Assert.That(run.Output.Split('\n').Count(l => l.StartsWith("| mode |", StringComparison.Ordinal)), Is.EqualTo(1), "one table, from rank 0");
        Assert.That(run.Output, Does.Contain("| full |").And.Contain("| sbp-0.5 |").And.Contain("data parallel over 2 ranks"));
    }

    [Test]
    public void DistOptionsThatCannotWorkAreRefusedBeforeAnyWork()
    {
        var alone = Single([.. Common("full", 8, NewDir()), "--dist", "mpi"]);
        Assert.That((alone.Code, alone.Output), Is.EqualTo((2, alone.Output)));
        Assert.That(alone.Output, Does.Contain("--dist mpi: this process was not started by Open MPI's mpirun"));
        RequireMpirun();
        var cpu = Mpi([.. Common("full", 8, NewDir()), "--dist", "nccl", "--device", "cpu"]);
        Assert.That(cpu.Code, Is.EqualTo(2), cpu.Output);
        Assert.That(cpu.Output, Does.Contain("--dist nccl: the device is cpu; NCCL connects GPUs"));
    }

    [TestCase("KILL", "rank 1")]
    [TestCase("STOP", "a rank is lost or hung")]
    public void ALostOrHungRankEndsTheJobWithin30SecondsAndTheLastCheckpointLoads(string signal, string expected)
    {
        RequireMpirun();
        string dir = NewDir(), marker = Guid.NewGuid().ToString("N");
        try
        {
            string[] args = [.. Common("full", 4, dir, epochs: 50), "--checkpoint-every", "2", "--dist-timeout", "5"];
            var checkpoint = Path.Combine(dir, "checkpoint.safetensors");
            Stopwatch? sinceSignal = null;
            var run = Mpi(args, 120, marker: marker, during: p =>
            {
                var wait = Stopwatch.StartNew();
                while (!File.Exists(checkpoint) && wait.Elapsed.TotalSeconds < 90 && !p.HasExited) Thread.Sleep(100);
                Assert.That(File.Exists(checkpoint), Is.True, "a checkpoint before the fault");
                int pid = RankPid(marker, 1);
                Start("kill", [$"-{signal}", pid.ToString()], 10);
                sinceSignal = Stopwatch.StartNew();
            });
            double seconds = sinceSignal!.Elapsed.TotalSeconds;
            Assert.That(run.Code, Is.Not.EqualTo(0));
            Assert.That(seconds, Is.LessThan(30), $"the job ended {seconds:F1} s after rank 1 was {signal}ed");
            Assert.That(run.Output, Does.Contain(expected), run.Output);
            var eval = Single(["eval", "--checkpoint", checkpoint, "--model", "swin-nano", "--frames", "4", "--size", "16", "--classes", "3", "--val-count", "6"]);
            Assert.That(eval.Code, Is.EqualTo(0), eval.Output);
            Assert.That(eval.Output, Does.Contain("top-1"));
        }
        finally { Delete(dir); }
    }

    /// <summary>The process id of rank <paramref name="rank"/> of the launch tagged <paramref name="marker"/> (from /proc/*/environ).</summary>
    static int RankPid(string marker, int rank)
    {
        foreach (var dir in Directory.GetDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out int pid)) continue;
            string env;
            try { env = File.ReadAllText(Path.Combine(dir, "environ")); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { continue; }
            var vars = env.Split('\0');
            if (vars.Contains($"SBP_TEST_RUN={marker}") && vars.Contains($"OMPI_COMM_WORLD_RANK={rank}") && File.ReadAllText(Path.Combine(dir, "comm")).Trim() == "dotnet") return pid;
        }
        Assert.Fail($"no process of rank {rank} with marker {marker}");
        return 0;
    }

    static string NewDir() => Path.Combine(Path.GetTempPath(), $"sbp-mpi-{Guid.NewGuid():N}");

    static void Delete(params string[] dirs)
    {
        foreach (var d in dirs) if (Directory.Exists(d)) Directory.Delete(d, true);
    }
}
