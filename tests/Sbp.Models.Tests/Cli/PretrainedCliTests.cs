using Sbp.IO;
using Sbp.Models.Tests.Reference;
using static Sbp.Models.Tests.Cli.CliRun;

namespace Sbp.Models.Tests.Cli;

/// <summary>
/// Pretrained weights through the `sbp` program: a torchvision-layout .pth converted to safetensors
/// (`sbp convert`) and fine-tuned one epoch on the synthetic data (`sbp train --init`), with and without a fresh head.
/// </summary>
public class PretrainedCliTests
{
    string _dir = "";

    [SetUp]
    public void SetUp() => _dir = Directory.CreateTempSubdirectory("sbp-pretrained-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, true);

    static string Pth => Path.Combine(AppContext.BaseDirectory, "Fixtures", "Pth", "r2plus1d-tiny-eval.pth");

    static readonly string[] Tiny = ["--model", "r2plus1d-nano", "--mode", "full", "--train-count", "16", "--val-count", "4", "--frames", "8", "--size", "16",
        "--batch", "4", "--workers", "1", "--device", "cpu", "--epochs", "1"];

    [Test]
    public void A_converted_checkpoint_fine_tunes_one_epoch()
    {
        string converted = Path.Combine(_dir, "r2plus1d.safetensors"), run = Path.Combine(_dir, "run");
        var convert = Run("convert", Pth, "--out", converted);
        Assert.That(convert.Code, Is.Zero, convert.Err);
        Assert.That(convert.Out, Does.Contain("zip format, state dict at the top level").And.Contain("128 tensors (107 float32, 21 int64)"));
        var file = SafeTensors.Load(converted);
        var reference = ReferenceFixture.Load("r2plus1d-tiny-eval").Weights;
        Assert.That(file.ToFloatArray("layer2.0.conv1.0.3.weight"), Is.EqualTo(reference["layer2.0.conv1.0.3.weight"].Values));
        Assert.That(file.Metadata["sbp.converted_from"], Is.EqualTo("r2plus1d-tiny-eval.pth"));

        var train = Run(["train", .. Tiny, "--init", converted, "--reset-head", "--out", run]);
        Assert.That(train.Code, Is.Zero, train.Err);
        Assert.That(train.Out, Does.Contain($"initialized from {converted}: 105 tensors from the TorchvisionVideoResNet layout; the head starts fresh"));
        Assert.That(train.Out, Does.Contain("epoch 1"));
        Assert.That(File.Exists(Path.Combine(run, "checkpoint.safetensors")));
    }

    [Test]
    public void The_pth_itself_initializes_every_weight_when_the_classes_match()
    {
        var train = Run(["train", .. Tiny, "--classes", "5", "--init", Pth, "--max-steps", "1", "--out", Path.Combine(_dir, "run")]);
        Assert.That(train.Code, Is.Zero, train.Err);
        Assert.That(train.Out, Does.Contain("107 tensors from the TorchvisionVideoResNet layout"));
    }

    [Test]
    public void A_head_for_other_classes_is_refused_with_the_advice_to_reset_it()
    {
        var train = Run(["train", .. Tiny, "--classes", "3", "--init", Pth]);
        Assert.That(train.Code, Is.EqualTo(2));
        Assert.That(train.Err, Does.Contain("--init: the file's classifier does not fit this model's 3 classes").And.Contain("fc.weight").And.Contain("--reset-head"));
        Assert.That(train.Out, Does.Not.Contain("epoch 1"));
    }
}
