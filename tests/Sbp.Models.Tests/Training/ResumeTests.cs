using System.Diagnostics;
using Sbp.IO;
using Sbp.Models.Data;
using Sbp.Models.Training;
using Sbp.Tensors;

namespace Sbp.Models.Tests.Training;

/// <summary>
/// Crash safety of training: a run stopped (or killed) mid-epoch and resumed from its last
/// checkpoint ends with exactly the weights and optimizer state of an uninterrupted run; micro-
/// batches and the out-of-memory retry give the same update up to rounding.
/// </summary>
public class ResumeTests
{
    static readonly DatasetSpec Spec = new() { Source = DatasetCatalog.Actions, Frames = 4, Height = 16, Width = 16, Classes = 3, TrainCount = 12, ValCount = 6 };
    static IVideoDataset Train => DatasetCatalog.Open(Spec, DataSplit.Train);
    static IVideoDataset Val => DatasetCatalog.Open(Spec, DataSplit.Validation);

    static TrainConfig Config(string dir) => new()
    {
        Model = "swin-nano", Epochs = 2, BatchSize = 4, Workers = 1, Mode = TrainMode.Sbp, Keep = 0.5, OutputDir = dir,
    };

    static string NewDir() => Path.Combine(Path.GetTempPath(), $"sbp-resume-{Guid.NewGuid():N}");

    /// <summary>Every tensor of the checkpoint (model and optimizer state) as raw bytes.</summary>
    static Dictionary<string, byte[]> Contents(string dir)
    {
        var file = SafeTensors.Load(Path.Combine(dir, "checkpoint.safetensors"));
        return file.Tensors.ToDictionary(t => t.Name, t => file.Data(t.Name).ToArray());
    }

    static void AssertSameCheckpoint(string expectedDir, string actualDir)
    {
        var expected = Contents(expectedDir);
        var actual = Contents(actualDir);
        Assert.That(actual.Keys, Is.EquivalentTo(expected.Keys));
        foreach (var (name, bytes) in expected) Assert.That(actual[name], Is.EqualTo(bytes), $"{name} differs from the uninterrupted run");
    }

    [Test]
    public void StoppingMidEpochAndResumingGivesTheSameWeightsBitForBit()
    {
        string a = NewDir(), b = NewDir();
        try
        {
            var full = new Trainer(Config(a), Device.CreateCpu("uninterrupted"), _ => { }).Run(Train, Val);
            Assert.That(full.Steps, Is.EqualTo(6));
            var first = new Trainer(Config(b) with { MaxSteps = 4 }, Device.CreateCpu("first"), _ => { }).Run(Train, Val);
            Assert.That(first.Steps, Is.EqualTo(4), "stopped in the middle of the second epoch");
            var log = new List<string>();
            var second = new Trainer(Config(b) with { Resume = true }, Device.CreateCpu("resumed"), log.Add).Run(Train, Val);
            Assert.That(log, Has.Some.Contains("resumed from").And.Contains("at step 4"));
            Assert.That(second.Steps, Is.EqualTo(6));
            AssertSameCheckpoint(a, b);
        }
        finally
        {
            foreach (var d in new[] { a, b }) if (Directory.Exists(d)) Directory.Delete(d, true);
        }
    }

    [Test]
    public void AKilledTrainingProcessResumesToTheSameWeights()
    {
        string a = NewDir(), b = NewDir();
        try
        {
            var spec = Spec with { TrainCount = 40 };
            new Trainer(Config(a), Device.CreateCpu("uninterrupted"), _ => { }).Run(DatasetCatalog.Open(spec, DataSplit.Train), Val);
            string[] args =
            [
                "train", "--device", "cpu", "--model", "swin-nano", "--mode", "sbp", "--keep", "0.5", "--epochs", "2", "--batch", "4", "--workers", "1",
                "--frames", "4", "--size", "16", "--classes", "3", "--train-count", "40", "--val-count", "6", "--out", b, "--checkpoint-every", "1",
            ];
            // Kill the child as soon as it has trained 3 steps (possibly while it writes a checkpoint).
            using (var child = Start(args))
            {
                var metrics = Path.Combine(b, "metrics.jsonl");
                var watch = Stopwatch.StartNew();
                while (!child.HasExited && watch.Elapsed < TimeSpan.FromMinutes(2) && StepLines(metrics) < 3) Thread.Sleep(20);
                Assert.That(child.HasExited, Is.False, "the child finished before it could be killed; " + child.StandardError.ReadToEnd());
                child.Kill(entireProcessTree: true);
                child.WaitForExit();
            }
            Assert.That(File.Exists(Path.Combine(b, "checkpoint.safetensors")), Is.True);
            using (var resumed = Start([.. args, "--resume"]))
            {
                Assert.That(resumed.WaitForExit(TimeSpan.FromMinutes(3)), Is.True, "the resumed run did not finish");
                Assert.That(resumed.ExitCode, Is.Zero, resumed.StandardError.ReadToEnd());
                Assert.That(resumed.StandardOutput.ReadToEnd(), Does.Contain("resumed from"));
            }
            AssertSameCheckpoint(a, b);
        }
        finally
        {
            foreach (var d in new[] { a, b }) if (Directory.Exists(d)) Directory.Delete(d, true);
        }
    }

    [Test]
    public void AProcessKilledWhileWritingACheckpointResumesFromThePreviousOne()
    {
        string a = NewDir(), b = NewDir();
        try
        {
            new Trainer(Config(a), Device.CreateCpu("uninterrupted"), _ => { }).Run(Train, Val);
            string[] args =
            [
                "train", "--device", "cpu", "--model", "swin-nano", "--mode", "sbp", "--keep", "0.5", "--epochs", "2", "--batch", "4", "--workers", "1",
                "--frames", "4", "--size", "16", "--classes", "3", "--train-count", "12", "--val-count", "6", "--out", b, "--checkpoint-every", "1",
            ];
            // The third save (after step 3) dies half-way through writing its temporary file.
            using (var child = Start(args, ("SBP_FAULT_CRASH_IN_SAVE", "3")))
            {
                Assert.That(child.WaitForExit(TimeSpan.FromMinutes(2)), Is.True);
                Assert.That(child.ExitCode, Is.Not.Zero, "the fault did not fire");
                Assert.That(child.StandardError.ReadToEnd(), Does.Contain("simulated crash while writing"));
            }
            var path = Path.Combine(b, "checkpoint.safetensors");
            Assert.That(SafeTensors.Load(path, requireChecksum: true).Metadata["step"], Is.EqualTo("2"), "the checkpoint on disk is the last complete one");
            Assert.That(Directory.GetFiles(b, "*.tmp"), Has.Length.EqualTo(1), "the half-written temporary file is left beside it");
            using (var resumed = Start([.. args, "--resume"]))
            {
                Assert.That(resumed.WaitForExit(TimeSpan.FromMinutes(3)), Is.True, "the resumed run did not finish");
                Assert.That(resumed.ExitCode, Is.Zero, resumed.StandardError.ReadToEnd());
            }
            AssertSameCheckpoint(a, b);
        }
        finally
        {
            foreach (var d in new[] { a, b }) if (Directory.Exists(d)) Directory.Delete(d, true);
        }
    }

    static int StepLines(string path)
    {
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            using var reader = new StreamReader(stream);
            return reader.ReadToEnd().Split('\n').Count(l => l.Contains("\"type\":\"step\"", StringComparison.Ordinal));
        }
        catch (IOException)
        {
            return 0;
        }
    }

    static Process Start(string[] args, params (string Name, string Value)[] environment)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var (name, value) in environment) info.Environment[name] = value;
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "sbp.dll"));
        foreach (var a in args) info.ArgumentList.Add(a);
        return Process.Start(info)!;
    }

    [Test]
    public void MicroBatchesGiveTheSameUpdateUpToRounding()
    {
        string a = NewDir(), b = NewDir();
        try
        {
            var one = Config(a) with { Epochs = 1, MaxSteps = 1, Mode = TrainMode.Full };
            new Trainer(one, Device.CreateCpu("one"), _ => { }).Run(Train, Val);
            new Trainer(one with { OutputDir = b, MicroBatches = 3 }, Device.CreateCpu("three"), _ => { }).Run(Train, Val);
            var x = Contents(a);
            var y = Contents(b);
            foreach (var name in x.Keys.Where(k => k.StartsWith("model.", StringComparison.Ordinal)))
            {
                var p = Floats(x[name]);
                var q = Floats(y[name]);
                for (int i = 0; i < p.Length; i++) Assert.That(q[i], Is.EqualTo(p[i]).Within(2e-5f + 1e-4f * Math.Abs(p[i])), $"{name}[{i}]");
            }
        }
        finally
        {
            foreach (var d in new[] { a, b }) if (Directory.Exists(d)) Directory.Delete(d, true);
        }
    }

    static float[] Floats(byte[] bytes)
    {
        var f = new float[bytes.Length / 4];
        Buffer.BlockCopy(bytes, 0, f, 0, bytes.Length);
        return f;
    }

    [Test]
    public void OutOfMemoryRetriesTheStepWithMoreMicroBatches()
    {
        // Measure the peak of two steps (the second holds the optimizer state too) with the whole batch and
        // with 4 micro-batches, then train under a limit between the two: a step fails, is retried with
        // more micro-batches, and training goes on.
        long Peak(int micro)
        {
            var d = Device.CreateCpu($"peak {micro}");
            new Trainer(Config(NewDir()) with { OutputDir = null, Epochs = 1, MaxSteps = 2, MicroBatches = micro }, d, _ => { }).Run(Train, Val);
            return d.Pool.PeakInUseBytes;
        }
        long whole = Peak(1), quarter = Peak(4);
        Assert.That(quarter, Is.LessThan(whole));
        var device = Device.CreateCpu("limited");
        device.Pool.LimitBytes = (whole + quarter) / 2;
        var log = new List<string>();
        TestContext.Out.WriteLine($"peak whole {whole}, quarter {quarter}, limit {device.Pool.LimitBytes}");
        var result = new Trainer(Config(NewDir()) with { OutputDir = null, Epochs = 1, OomRetry = true }, device, s => { log.Add(s); TestContext.Out.WriteLine(s); }).Run(Train, Val);
        Assert.That(result.Steps, Is.EqualTo(3));
        Assert.That(log, Has.Some.Contains("out of memory at step").And.Contains("retrying with"));
        Assert.That(device.Pool.InUseBytes, Is.Zero);
    }
}
