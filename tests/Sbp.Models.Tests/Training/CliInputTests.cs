using Sbp.Cli;
using Sbp.Models.Training;
using Sbp.Stochastic;
using Sbp.Tensors;
using static Sbp.Models.Tests.Cli.CliRun;

namespace Sbp.Models.Tests.Training;

/// <summary>
/// Malformed values of the SBP options (mode, keep, mask, mask scope, caching, blocks, model) stop
/// `train`, `compare` and `memory` with exit code 2 and a message that names the value, before any
/// data is opened or any step trains; the mask options work when well formed.
/// </summary>
public class CliInputTests
{
    static readonly string[] Tiny = ["--train-count", "4", "--val-count", "2", "--frames", "4", "--size", "16", "--batch", "2", "--epochs", "1", "--steps", "1", "--workers", "1"];

    public static IEnumerable<TestCaseData> Malformed()
    {
        TestCaseData Case(string name, string value, params string[] args) => new TestCaseData(args, value).SetName($"{name} is refused before training");
        yield return Case("compare modes with a letter O", "sbp:O.5", "compare", "--modes", "full,sbp:O.5");
        yield return Case("compare modes with letters", "sbp:abc", "compare", "--modes", "full,sbp:abc");
        yield return Case("compare mode without keep", "'sbp'", "compare", "--modes", "full,sbp");
        yield return Case("compare unknown mode", "fast", "compare", "--modes", "full,fast");
        yield return Case("compare keep above one", "sbp:1.5", "compare", "--modes", "full,sbp:1.5");
        yield return Case("compare keep zero", "sbp:0", "compare", "--modes", "full,sbp:0");
        yield return Case("compare empty entry", "full,,sbp:0.5", "compare", "--modes", "full,,sbp:0.5");
        yield return Case("compare strided keep not 1 over s", "0.3", "compare", "--modes", "full,sbp:0.3");
        yield return Case("train keep with a letter O", "O.5", "train", "--keep", "O.5");
        yield return Case("train keep NaN", "NaN", "train", "--keep", "NaN");
        yield return Case("train unknown mode", "fullest", "train", "--mode", "fullest");
        yield return Case("train unknown mask", "stripes", "train", "--mask", "stripes");
        yield return Case("train unknown mask scope", "epoch", "train", "--mask-per", "epoch");
        yield return Case("train unknown caching", "lazy", "train", "--caching", "lazy");
        yield return Case("train unknown block coverage", "some", "train", "--sbp-blocks", "some");
        yield return Case("train unknown model", "swin-huge", "train", "--model", "swin-huge");
        yield return Case("train grid keep", "0.4", "train", "--model", "vit-nano", "--mask", "grid", "--keep", "0.4");
        yield return Case("memory keep", "zero", "memory", "--keep", "1,zero");
        yield return Case("memory mask", "stripes", "memory", "--mask", "stripes");
        yield return Case("memory mask scope", "epoch", "memory", "--mask-per", "epoch");
        yield return Case("memory model", "swin-huge", "memory", "--model", "swin-huge");
    }

    [TestCaseSource(nameof(Malformed))]
    public void A_malformed_value_exits_2_naming_it(string[] args, string value)
    {
        var (code, o, e) = Run([.. args, .. args[0] == "memory" ? [] : Tiny]);
        Assert.Multiple(() =>
        {
            Assert.That(code, Is.EqualTo(2), $"stdout: {o}\nstderr: {e}");
            Assert.That(e, Does.Contain(value), "the message names the value");
            Assert.That(o, Does.Not.Contain("epoch").And.Not.Contain("parameters)"), "nothing trained or was built before the error");
        });
    }

    [Test]
    public void A_mask_a_swin_window_cannot_keep_is_refused_before_the_first_mode_trains()
    {
        // swin-nano's temporal window holds 2 token frames: keep 1/4 cannot keep the same frames in each.
        var (code, o, e) = Run("compare", "--model", "swin-nano", "--modes", "full,sbp:0.25", "--frames", "8", "--size", "16",
            "--train-count", "4", "--val-count", "2", "--batch", "2", "--epochs", "1", "--steps", "1", "--workers", "1");
        Assert.That(code, Is.EqualTo(2), e);
        Assert.That(e, Does.Contain("sbp-0.25").And.Contain("same frames").And.Contain("keep 1, 0.5"));
        Assert.That(o, Does.Not.Contain("epoch 1"), "full backprop did not train first");
    }

    [TestCase("random", "layer")]
    [TestCase("strided-random", "step")]
    [TestCase("strided", "model")]
    public void Mask_options_train(string mask, string per)
    {
        var (code, o, e) = Run(["train", "--model", "r21d-nano", "--mask", mask, "--mask-per", per, .. Tiny]);
        Assert.That(code, Is.Zero, e);
        Assert.That(o, Does.Contain("sbp-0.5"));
    }

    [Test]
    public void Mask_options_reach_the_policy()
    {
        var (kind, randomOffset) = TrainOptions.ParseMask("strided-random");
        Assert.That((kind, randomOffset), Is.EqualTo(((MaskKind?)MaskKind.Strided, true)));
        Assert.That(TrainOptions.ParseMask(null), Is.EqualTo(((MaskKind?)null, false)), "no --mask: the model's default");
        Assert.That(TrainOptions.ParseMaskScope("Layer"), Is.EqualTo(MaskScope.Layer));
    }

    [TestCase("full", TrainMode.Full, 1.0, "full")]
    [TestCase("checkpoint", TrainMode.Checkpoint, 1.0, "checkpoint")]
    [TestCase("sbp:0.5", TrainMode.Sbp, 0.5, "sbp-0.5")]
    [TestCase("SBP:1/4", TrainMode.Sbp, 0.25, "sbp-0.25")]
    [TestCase("sbp-0.125", TrainMode.Sbp, 0.125, "sbp-0.125")]
    [TestCase("sbp+checkpoint:0.25", TrainMode.Checkpoint, 0.25, "sbp+checkpoint-0.25")]
    [TestCase("bf16/sbp:0.5", TrainMode.Sbp, 0.5, "bf16-sbp-0.5")]
    [TestCase("FP16/full", TrainMode.Full, 1.0, "fp16-full")]
    [TestCase("bf16-sbp+checkpoint-0.25", TrainMode.Checkpoint, 0.25, "bf16-sbp+checkpoint-0.25")]
    public void Modes_parse_and_their_labels_read_back(string text, TrainMode mode, double keep, string label)
    {
        var spec = ModeSpec.Parse(text);
        Assert.That((spec.Mode, spec.Keep, spec.Label), Is.EqualTo((mode, keep, label)));
        Assert.That(ModeSpec.Parse(spec.Label), Is.EqualTo(spec), "a label is a mode");
    }

    [Test]
    public void A_precision_in_a_mode_overrides_the_runs_and_fp32_names_none()
    {
        var base16 = new TrainConfig { Precision = DType.BFloat16 };
        var runs = CompareRunner.Plan(base16, "full,fp32/full,fp16/sbp:0.5");
        Assert.That(runs.Select(r => (r.Label, r.Precision)), Is.EqualTo(new[]
        {
            ("bf16-full", DType.BFloat16), ("full", DType.Float32), ("fp16-sbp-0.5", DType.Float16),
        }));
        Assert.That(() => ModeSpec.Parse("bf16/"), Throws.ArgumentException.With.Message.Contains("'bf16/' is not a mode"));
        Assert.That(() => ModeSpec.ParsePrecision("tf32"), Throws.ArgumentException.With.Message.Contains("--precision: precision 'tf32' is not fp32, bf16 or fp16"));
    }

    [Test]
    public void Fp16_training_runs_under_autocast_with_loss_scaling_and_says_so()
    {
        var (code, o, e) = Run(["train", "--val-count", "4", "--frames", "4", "--size", "16", "--batch", "4", "--workers", "1", "--device", "cpu",
            "--train-count", "8", "--model", "r21d-nano", "--epochs", "1", "--precision", "fp16", "--mode", "sbp", "--keep", "0.5"]);
        Assert.That(code, Is.Zero, e);
        Assert.That(o, Does.Contain("autocast Float16 with dynamic loss scaling").And.Contain("loss scale 65536; 0 steps skipped"));
    }

    [Test]
    public void A_region_too_short_for_the_keep_ratio_is_reported()
    {
        RegionReport R(string name, int kept, int size) => new(name, RegionMode.SparseCache, kept, size, 0, 0);
        Assert.That(Trainer.EffectiveKeepNote([R("a", 4, 16), R("b", 2, 8)], 0.25), Is.Null);
        var note = Trainer.EffectiveKeepNote([R("a", 4, 16), R("late", 1, 2), R("later", 1, 2)], 0.25);
        Assert.That(note, Does.Contain("1 of 2 positions (keep 0.5) in 2 region(s), e.g. late").And.Contain("Effective keep ratio over the 3 regions: 0.417"));
    }
}
