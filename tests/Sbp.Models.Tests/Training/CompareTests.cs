using Sbp.Cli;
using System.Text.Json;
using Sbp.Models.Data;
using Sbp.Models.Training;
using Sbp.Tensors;

namespace Sbp.Models.Tests.Training;

public class CompareTests
{
    [Test]
    public void ModesParseToConfigs()
    {
        var b = new TrainConfig();
        Assert.That(CompareRunner.ConfigFor(b, "full"), Has.Property("Mode").EqualTo(TrainMode.Full).And.Property("Label").EqualTo("full"));
        Assert.That(CompareRunner.ConfigFor(b, "checkpoint").Label, Is.EqualTo("checkpoint"));
        Assert.That(CompareRunner.ConfigFor(b, "sbp:0.25"), Has.Property("Keep").EqualTo(0.25).And.Property("Label").EqualTo("sbp-0.25"));
        Assert.That(CompareRunner.ConfigFor(b, "sbp+checkpoint:0.5").Label, Is.EqualTo("sbp+checkpoint-0.5"));
        Assert.That(() => CompareRunner.ConfigFor(b, "half"), Throws.ArgumentException.With.Message.Contains("sbp:KEEP"));
    }

    [Test]
    public void TinyComparisonTrainsEveryModeFromTheSameStartAndWritesTheJsonFields()
    {
        var spec = new DatasetSpec { Source = DatasetCatalog.Actions, Frames = 4, Height = 16, Width = 16, Classes = 3, TrainCount = 8, ValCount = 6 };
        var train = DatasetCatalog.Open(spec, DataSplit.Train);
        var val = DatasetCatalog.Open(spec, DataSplit.Validation);
        var config = new TrainConfig { Model = "swin-nano", Epochs = 1, BatchSize = 4, Workers = 1 };
        var device = Device.CreateCpu("compare test");
        var log = new List<string>();
        var rows = CompareRunner.Run(config, ["full", "checkpoint", "sbp:0.5"], train, val, device, log.Add);
        Assert.That(rows.Select(r => r.Label), Is.EqualTo(new[] { "full", "checkpoint", "sbp-0.5" }));
        // Same seed, same data: the first step's loss (before any update) is identical in every mode.
        Assert.That(rows.Select(r => r.LossCurve[0].Loss).Distinct().Count(), Is.EqualTo(1));
        Assert.That(rows[2].SavedActivationBytes, Is.LessThan(rows[0].SavedActivationBytes), "SBP holds less for backward");
        Assert.That(rows[1].SavedActivationBytes, Is.LessThan(rows[0].SavedActivationBytes), "checkpointing holds less for backward");
        using var json = JsonDocument.Parse(CompareRunner.Json(rows, "swin-nano", "synthetic-actions", "cpu"));
        foreach (var o in json.RootElement.EnumerateArray())
            foreach (var field in new[] { "mode", "keep", "top1", "peak_bytes", "saved_activation_bytes", "step_ms" })
                Assert.That(o.TryGetProperty(field, out _), Is.True, field);
        Assert.That(CompareRunner.Table(rows, detection: false), Does.Contain("| sbp-0.5 | 0.5 |"));
        Assert.That(device.Pool.InUseBytes, Is.Zero, "training leaves nothing allocated");
    }
}

public class SeedSummaryTests
{
    static CompareRow Row(string mode, ulong seed, double top1, double stepMs = 100) =>
        new(mode == "full" ? "full" : "sbp-0.5", mode, mode == "full" ? 1 : 0.5, top1, 1, null, 0, 0, stepMs, 0, [], Seed: seed);

    [Test]
    public void SeedsParseAndBadListsAreRefusedWithTheOption()
    {
        Assert.That(SeedSummary.Parse("1, 2,3"), Is.EqualTo(new ulong[] { 1, 2, 3 }));
        Assert.That(() => SeedSummary.Parse("1,x"), Throws.ArgumentException.With.Message.Contains("--seeds").And.Message.Contains("'x'"));
        Assert.That(() => SeedSummary.Parse("1,-2"), Throws.ArgumentException.With.Message.Contains("'-2'"));
        Assert.That(() => SeedSummary.Parse("4,4"), Throws.ArgumentException.With.Message.Contains("seed 4 twice"));
        Assert.That(() => SeedSummary.Parse("4"), Throws.ArgumentException.With.Message.Contains("--seed"));
    }

    [Test]
    public void TheSummaryGivesMeanSpreadAndPerSeedDifferencesToFullBackprop()
    {
        // full: 90, 94, 92 (mean 92, sample std 2); SBP: 89, 90, 92.5 -> differences -1, -4, +0.5 (mean -1.5)
        var rows = new[]
        {
            Row("full", 1, 0.90, 100), Row("sbp", 1, 0.89, 80),
            Row("full", 2, 0.94, 120), Row("sbp", 2, 0.90, 90),
            Row("full", 3, 0.92, 110), Row("sbp", 3, 0.925, 70),
        };
        var lines = SeedSummary.Table(rows, detection: false).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(lines, Has.Length.EqualTo(4), "heading, rule, one line per mode");
        Assert.That(lines[2], Is.EqualTo("| full | 3 | 92.0 % | 2.0 | 90.0 % | 94.0 % |  | 1: 90.0, 2: 94.0, 3: 92.0 | 110 |"));
        Assert.That(lines[3], Is.EqualTo("| sbp-0.5 | 3 | 90.5 % | 1.8 | 89.0 % | 92.5 % | -1.5 points (from -4.0 to +0.5) | 1: 89.0, 2: 90.0, 3: 92.5 | 80 |"));
    }
}

public class ProfileStepTests
{
    [Test]
    public void ProfileStepLogsTheTimeOfEveryOpKindOnce()
    {
        var spec = new DatasetSpec { Source = DatasetCatalog.Actions, Frames = 4, Height = 16, Width = 16, Classes = 3, TrainCount = 8, ValCount = 4 };
        var train = DatasetCatalog.Open(spec, DataSplit.Train);
        var val = DatasetCatalog.Open(spec, DataSplit.Validation);
        var config = new TrainConfig { Model = "swin-nano", Epochs = 1, BatchSize = 4, Workers = 1, Mode = TrainMode.Sbp, Keep = 0.5, ProfileStep = 1 };
        var log = new List<string>();
        var device = Device.CreateCpu("profile test");
        new Trainer(config, device, log.Add).Run(train, val);
        var tables = log.Where(l => l.Contains("op profile of step", StringComparison.Ordinal)).ToList();
        Assert.That(tables, Has.Count.EqualTo(1), "one table, for step 1 only");
        Assert.That(tables[0], Does.Contain("Forward:").And.Contain("Backward:").And.Contain("region, compact").And.Contain("linear"));
        Assert.That(device.Pool.InUseBytes, Is.Zero);
    }
}

public class ComparePlotTests
{
    [Test]
    public void PlotsAreWrittenAsPngFiles()
    {
        var curve = Enumerable.Range(1, 20).Select(i => ((long)i, 2.0 / i)).ToList();
        CompareRow[] rows =
        [
            new("full", "full", 1, 0.9, 1, null, 100 << 20, 80 << 20, 500, 1000, curve),
            new("sbp-0.5", "sbp", 0.5, 0.89, 1, null, 60 << 20, 40 << 20, 400, 1000, curve),
        ];
        var dir = Path.Combine(Path.GetTempPath(), $"sbp-plots-{Guid.NewGuid():N}");
        try
        {
            var files = ComparePlots.Plots(rows, dir, detection: false, "tiny on synthetic-actions, 1 epoch");
            Assert.That(files.Select(Path.GetFileName), Is.EqualTo(new[] { "loss.png", "memory.png", "accuracy.png" }));
            foreach (var f in files)
                Assert.That(File.ReadAllBytes(f).Take(4), Is.EqualTo(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }), f);
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }
}
