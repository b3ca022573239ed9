using Sbp.Models.Data;
using Sbp.Models.Training;
using Sbp.Tensors;

namespace Sbp.Models.Tests.Training;

/// <summary>--save-activations reaches the trainer: the same forward (first loss), fewer saved bytes, training that still descends alike.</summary>
public class SavedActivationTypeTests
{
    static TrainResult Train(DType? saveAs, TrainMode mode)
    {
        var spec = new DatasetSpec { Source = DatasetCatalog.Actions, Frames = 4, Height = 16, Width = 16, Classes = 3, TrainCount = 12, ValCount = 4 };
        var device = Device.CreateCpu($"saved-as {saveAs}");
        var config = new TrainConfig { Model = "swin-nano", Mode = mode, Keep = 0.5, Epochs = 1, BatchSize = 4, Workers = 1, MaxSteps = 3, SaveActivationsAs = saveAs };
        var result = new Trainer(config, device, _ => { }).Run(DatasetCatalog.Open(spec, DataSplit.Train), DatasetCatalog.Open(spec, DataSplit.Validation));
        Assert.That(device.Pool.InUseBytes, Is.Zero, "the run leaves nothing allocated");
        return result;
    }

    [TestCase(TrainMode.Full)]
    [TestCase(TrainMode.Sbp)]
    public void Bf16SavingKeepsTheForwardHalvesMostSavedBytesAndTrainsAlike(TrainMode mode)
    {
        var fp32 = Train(null, mode);
        var bf16 = Train(DType.BFloat16, mode);
        Assert.Multiple(() =>
        {
            Assert.That(bf16.LossCurve[0].Loss, Is.EqualTo(fp32.LossCurve[0].Loss), "the first forward is Float32 either way");
            Assert.That(bf16.SavedActivationBytes, Is.LessThan(fp32.SavedActivationBytes * 0.7).And.GreaterThan(fp32.SavedActivationBytes * 0.45));
            Assert.That(bf16.LossCurve[^1].Loss, Is.EqualTo(fp32.LossCurve[^1].Loss).Within(2e-2 * Math.Abs(fp32.LossCurve[^1].Loss)));
        });
    }
}
