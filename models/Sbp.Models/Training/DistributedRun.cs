using System.Globalization;
using System.Text.RegularExpressions;
using Sbp.Autograd;
using Sbp.Distributed;
using Sbp.Models.Architectures;
using Sbp.Models.Data;

namespace Sbp.Models.Training;

/// <summary>
/// The data-parallel side of a <see cref="Trainer"/> run: the start-up check and broadcast, gradient averaging
/// (<see cref="DataParallel"/>), the per-step agreement on the loss and on stopping, checkpoints written by rank 0
/// behind a barrier, and the communication timing. With one rank every call is free.
/// </summary>
internal sealed partial class DistributedRun : IDisposable
{
    double _backwardMs, _exposedMs;
    long _bucketsDone, _buckets, _steps;

    public DistributedRun(Communicator comm, TrainConfig config, VideoModel model, IVideoDataset train)
    {
        Comm = comm;
        if (comm.Size == 1) return;
        if (config.OomRetry)
            throw new ArgumentException($"--oom-retry: not with {comm.Size} ranks (a retry on one rank would change its collectives); use --micro-batches instead.");
        Parallel = new DataParallel(comm, model.NamedParameters());
        Parallel.Start(model.NamedBuffers(), SettingsLines(config, train, comm));
    }

    public Communicator Comm { get; }

    /// <summary>Null with one rank.</summary>
    public DataParallel? Parallel { get; }

    /// <summary>What every rank must agree on, one fact per line: the run's settings (but the data loading threads) and the data.</summary>
    public static List<string> SettingsLines(TrainConfig c, IVideoDataset train, Communicator comm)
    {
        var text = (c with { Workers = 0 }).ToString();
        var lines = Field().Split(text[(text.IndexOf('{') + 1)..].TrimEnd('}', ' ').Trim()).Select(f => "setting " + f.Trim()).ToList();
        lines.Add($"data {train.Describe()}, {train.Count} samples, {train.ClassNames.Count} classes");
        lines.Add($"input {train.Transform.Describe()}");
        lines.Add($"ranks {comm.Size} ({comm.Engine})");
        return lines;
    }

    [GeneratedRegex(", (?=[A-Z][A-Za-z]* = )")]
    private static partial Regex Field();

    /// <summary>The seed of a rank's SBP masks: the run's seed, or with per-rank masks the rank mixed in.</summary>
    public static ulong MaskSeed(TrainConfig c, int rank) => c.MasksPerRank ? c.Seed + 0x9E3779B97F4A7C15UL * (ulong)rank : c.Seed;

    /// <summary>Before a step's forward: rank 0's buffers everywhere (DDP's broadcast_buffers).</summary>
    public void BeforeStep() => Parallel?.SyncBuffers();

    /// <summary>The last micro-batch's tape: gradients are averaged during its backward.</summary>
    public void Attach(Tape tape) => Parallel?.Attach(tape);

    public void Finish()
    {
        if (Parallel is null) return;
        Parallel.Finish();
        var t = Parallel.LastTiming;
        (_backwardMs, _exposedMs, _bucketsDone, _buckets, _steps) = (_backwardMs + t.BackwardMs, _exposedMs + t.ExposedMs, _bucketsDone + t.BucketsDoneDuringBackward, _buckets + t.Buckets, _steps + 1);
    }

    /// <summary>Every rank's loss averaged, and whether any rank was asked to stop (Ctrl-C): the same answer on every rank.</summary>
    public (double Loss, bool Stop) AfterStep(double loss, bool stop)
    {
        if (Comm.Size == 1) return (loss, stop);
        Span<double> v = [loss, stop ? 1 : 0];
        Comm.AllReduce(v, "the step's loss");
        return (v[0] / Comm.Size, v[1] > 0);
    }

    /// <summary>Rank 0 writes the checkpoint; every rank waits until it is complete.</summary>
    public void Save(Action save, long step)
    {
        if (Comm.IsRoot) save();
        if (Comm.Size > 1) Comm.Barrier($"the checkpoint at step {step}");
    }

    /// <summary>The epoch's communication figures (rank 0's view), then reset; null with one rank or no step.</summary>
    public string? TimingLine()
    {
        if (Parallel is null || _steps == 0) return null;
        double exposed = _exposedMs / _steps, alone = Parallel.AllReduceMs;
        string line = string.Create(CultureInfo.InvariantCulture,
            $"  data parallel over {Comm.Size} ranks ({Comm.Engine}, {Parallel.BucketElements.Count} bucket{(Parallel.BucketElements.Count == 1 ? "" : "s")}): backward {_backwardMs / _steps:0} ms/step; " +
            $"the gradients' all-reduces take {alone:0.0} ms alone, {exposed:0.0} ms/step were waited for after backward (for them and for a slower rank) " +
            $"({100 * Math.Clamp(1 - exposed / Math.Max(alone, 1e-9), 0, 1):0}% hidden behind backward; {100.0 * _bucketsDone / _buckets:0}% of the buckets done by its end)");
        (_backwardMs, _exposedMs, _bucketsDone, _buckets, _steps) = (0, 0, 0, 0, 0);
        return line;
    }

    public void Dispose() => Parallel?.Dispose();
}
