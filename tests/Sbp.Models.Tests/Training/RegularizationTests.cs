using Sbp.Models.Architectures;
using Sbp.Models.Data;
using Sbp.Models.Training;
using Sbp.Rng;
using Sbp.Tensors;

namespace Sbp.Models.Tests.Training;

/// <summary>
/// --label-smoothing and --drop-path reach the loss and the model: the smoothed loss is linear in eps
/// (same weights, same first batch), drop-path rates follow timm's linear rule, and a model without
/// stochastic depth refuses the option by name.
/// </summary>
public class RegularizationTests
{
    static double FirstLoss(TrainConfig config)
    {
        var spec = new DatasetSpec { Source = DatasetCatalog.Actions, Frames = 4, Height = 16, Width = 16, Classes = 3, TrainCount = 8, ValCount = 4 };
        var device = Device.CreateCpu("regularization test");
        var result = new Trainer(config with { Epochs = 1, BatchSize = 4, Workers = 1, MaxSteps = 1 }, device, _ => { })
            .Run(DatasetCatalog.Open(spec, DataSplit.Train), DatasetCatalog.Open(spec, DataSplit.Validation));
        Assert.That(device.Pool.InUseBytes, Is.Zero, "the run leaves nothing allocated");
        return result.LossCurve[0].Loss;
    }

    [Test]
    public void Label_smoothing_mixes_the_cross_entropy_with_the_uniform_targets_loss()
    {
        // loss(eps) = (1 - eps) CE + eps U for the same logits: linear in eps, so loss(0.25) is the mean of loss(0) and loss(0.5).
        var config = new TrainConfig { Model = "swin-nano" };
        double plain = FirstLoss(config), half = FirstLoss(config with { LabelSmoothing = 0.5f }), quarter = FirstLoss(config with { LabelSmoothing = 0.25f });
        Assert.That(Math.Abs(half - plain), Is.GreaterThan(1e-3), "smoothing changes the loss");
        Assert.That(quarter, Is.EqualTo((plain + half) / 2).Within(1e-5));
    }

    [Test]
    public void Drop_path_replaces_the_models_rates_and_changes_training()
    {
        using var swin = (VideoSwinTransformer)ModelFactory.Create("swin-nano", new RandomSource(1), dropPath: 0.3f);
        var blocks = swin.Stages.SelectMany(s => s.Blocks).Select(b => b.DropPath.P).ToArray();
        Assert.That(blocks, Is.EqualTo(Inits.DropPathRates(0.3f, blocks.Length)));
        Assert.That(blocks[^1], Is.EqualTo(0.3f));
        using var vit = (VideoVit)ModelFactory.Create("vit-nano", new RandomSource(1), dropPath: 0.2f);
        Assert.That(vit.Blocks[^1].DropPath.P, Is.EqualTo(0.2f));
        // swin-nano has no stochastic depth by default: with it the first step drops branches and its loss differs.
        var config = new TrainConfig { Model = "swin-nano" };
        Assert.That(FirstLoss(config with { DropPath = 0.5f }), Is.Not.EqualTo(FirstLoss(config)).Within(1e-6));
    }

    [Test]
    public void A_model_without_stochastic_depth_refuses_a_drop_path_rate()
    {
        Assert.That(ModelFactory.HasDropPath("r21d-nano"), Is.False);
        Assert.That(() => new TrainConfig { Model = "r21d-nano", DropPath = 0.1f }.Validate(),
            Throws.ArgumentException.With.Message.Contains("--drop-path").And.Message.Contains("no stochastic depth"));
        Assert.That(() => ModelFactory.Create("det-nano", new RandomSource(1), dropPath: 0.1f),
            Throws.InstanceOf<ArgumentOutOfRangeException>().With.Message.Contains("no stochastic depth"));
        Assert.That(() => new TrainConfig { Model = "swin-nano", LabelSmoothing = 1f }.Validate(),
            Throws.ArgumentException.With.Message.Contains("--label-smoothing"));
    }
}
