using Sbp.Distributed;
using Sbp.IO;
using Sbp.Models.Data;
using Sbp.Models.Training;
using Sbp.Tensors;

namespace Sbp.Models.Tests.Distributed;

/// <summary>
/// The Trainer over ranks that are threads of this process (no MPI needed): 2 ranks x batch 4 end with the weights of
/// 1 rank x batch 8, in full backprop and SBP; rank 0 alone writes the checkpoint; ranks that disagree are refused.
/// The same over Open MPI processes: <see cref="MpiLaunchTests"/>.
/// </summary>
public class DataParallelTrainingTests
{
    static readonly DatasetSpec Spec = new() { Source = DatasetCatalog.Actions, Frames = 4, Height = 16, Width = 16, Classes = 3, TrainCount = 24, ValCount = 6 };

    static TrainConfig Config(string dir, TrainMode mode, int batch, DType precision = DType.Float32) => new()
    {
        Model = "swin-nano", Epochs = 1, BatchSize = batch, Workers = 1, Mode = mode, Keep = 0.5, OutputDir = dir, WarmupSteps = 1, Precision = precision,
    };

    internal static Dictionary<string, float[]> Weights(string dir)
    {
        var file = SafeTensors.Load(Path.Combine(dir, "checkpoint.safetensors"));
        return file.Tensors.Where(t => t.Name.StartsWith("model.", StringComparison.Ordinal))
            .ToDictionary(t => t.Name, t => System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(file.Data(t.Name)).ToArray());
    }

    internal static void AssertSameWeights(string a, string b, float tolerance)
    {
        var x = Weights(a);
        var y = Weights(b);
        Assert.That(y.Keys, Is.EquivalentTo(x.Keys));
        foreach (var (name, p) in x)
            for (int i = 0; i < p.Length; i++)
                Assert.That(y[name][i], Is.EqualTo(p[i]).Within(tolerance), $"{name}[{i}]");
    }

    [TestCase(TrainMode.Full, DType.Float32, 2e-6f)]
    [TestCase(TrainMode.Sbp, DType.Float32, 2e-6f)]
    // bf16 autocast: each sample's forward is the same bits on either split (a GEMM element's sum does not depend on the
    // rows around it) and the weight gradients are summed in float32 as without autocast: the same tolerance holds
    [TestCase(TrainMode.Sbp, DType.BFloat16, 2e-6f)]
    public void TwoRanksOfHalfTheBatchGiveTheWeightsOfOneRankOfTheWholeBatch(TrainMode mode, DType precision, float tolerance)
    {
        string one = NewDir(), two = NewDir();
        try
        {
            var train = DatasetCatalog.Open(Spec, DataSplit.Train);
            var val = DatasetCatalog.Open(Spec, DataSplit.Validation);
            var single = new Trainer(Config(one, mode, 8, precision), Device.CreateCpu("one"), _ => { }).Run(train, val);
            var results = ThreadGroupCommunicator.Run(2, comm =>
                new Trainer(Config(two, mode, 4, precision), Device.CreateCpu($"rank{comm.Rank}"), _ => { }, communicator: comm).Run(train, val));
            Assert.That(single.Steps, Is.EqualTo(3));
            Assert.That(results.Select(r => r.Steps), Is.All.EqualTo(3L), "24 samples: 3 steps of 8 in all");
            // Summation order only (the gradient is scaled by 1/2 before the sum): a few float32 ulps after 3 AdamW steps.
            AssertSameWeights(one, two, tolerance);
            Assert.That(results[1].Final.Top1, Is.EqualTo(results[0].Final.Top1), "evaluation shared over the ranks, the same on each");
            Assert.That(results[0].Final.Top1, Is.EqualTo(single.Final.Top1).Within(1e-9), "same weights, same held-out accuracy");
            Assert.That(results[0].LossCurve.Select(l => l.Loss), Is.EqualTo(single.LossCurve.Select(l => l.Loss)).Within(1e-5), "the logged loss is the ranks' mean");
        }
        finally
        {
            foreach (var d in new[] { one, two }) if (Directory.Exists(d)) Directory.Delete(d, true);
        }
    }

    [Test]
    public void TwoRanksStoppedMidRunAndResumedFromRankZerosCheckpointEndAsAnUninterruptedRun()
    {
        string whole = NewDir(), parts = NewDir();
        try
        {
            var train = DatasetCatalog.Open(Spec, DataSplit.Train);
            var val = DatasetCatalog.Open(Spec, DataSplit.Validation);
            TrainResult[] Ranks(TrainConfig config) => ThreadGroupCommunicator.Run(2, comm =>
                new Trainer(config, Device.CreateCpu($"rank{comm.Rank}"), _ => { }, communicator: comm).Run(train, val));
            var config = Config(whole, TrainMode.Sbp, 4) with { Epochs = 2 };
            Assert.That(Ranks(config).Select(r => r.Steps), Is.All.EqualTo(6L));
            Assert.That(Ranks(config with { OutputDir = parts, MaxSteps = 4 }).Select(r => r.Steps), Is.All.EqualTo(4L), "stopped inside the second epoch");
            Assert.That(Ranks(config with { OutputDir = parts, Resume = true }).Select(r => r.Steps), Is.All.EqualTo(6L), "both ranks resumed at step 4");
            AssertSameWeights(whole, parts, 0f);
        }
        finally
        {
            foreach (var d in new[] { whole, parts }) if (Directory.Exists(d)) Directory.Delete(d, true);
        }
    }

    [Test]
    public void RanksWithDifferentSettingsAreRefusedBeforeTraining()
    {
        var train = DatasetCatalog.Open(Spec, DataSplit.Train);
        var val = DatasetCatalog.Open(Spec, DataSplit.Validation);
        var e = Assert.Throws<DistributedMismatchException>(() => ThreadGroupCommunicator.Run(2, comm =>
            new Trainer(Config(null!, TrainMode.Sbp, 4) with { OutputDir = null, LabelSmoothing = comm.Rank == 0 ? 0f : 0.1f }, Device.CreateCpu($"r{comm.Rank}"), _ => { }, communicator: comm)
                .Run(train, val)))!;
        Assert.That(e.Message, Does.Contain("rank 1 differs from rank 0").And.Contain("'setting LabelSmoothing = 0'"));
    }

    static string NewDir() => Path.Combine(Path.GetTempPath(), $"sbp-ddp-{Guid.NewGuid():N}");
}
