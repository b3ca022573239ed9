using Sbp.Models.Architectures;
using Sbp.Models.Pretrained;
using Sbp.Nn;
using Sbp.Rng;
using Sbp.Tensors;

namespace Sbp.Models.Tests.Reference;

/// <summary>
/// The official-weights mapping on the committed fixtures: it is lossless both ways, it reports every problem at
/// once by key and shape (models that cannot express an official configuration among them), and the fixtures are
/// sensitive: planting a deviation from the official code in our model makes them fail.
/// </summary>
[Category("reference")]
public sealed class OfficialWeightsTests
{
    Device _cpu = null!;

    [SetUp]
    public void BeginTest() => _cpu = Device.CreateCpu($"official {TestContext.CurrentContext.Test.Name}");

    [TearDown]
    public void EndTest() => Assert.That(_cpu.Pool.InUseBytes, Is.EqualTo(0), "tensors leaked");

    [TestCase("swin-small-map")]
    [TestCase("videomae-tiny")]
    [TestCase("resnet50-tiny-eval")]
    [TestCase("r2plus1d-tiny-eval")]
    public void Loaded_weights_read_back_under_the_official_names_unchanged(string name)
    {
        var fixture = ReferenceFixture.Load(name);
        using var model = ReferenceRun.Build(fixture, _cpu);
        var mapping = OfficialWeights.For(model, ReferenceRun.Layout(fixture.Family));
        var target = fixture.Family == "resnet" ? ((FrameDetector)model).Backbone : (Module)model;
        var back = mapping.ToOfficial(target.StateDict());
        var skipped = fixture.Weights.Keys.Except(back.Keys).ToList();
        Assert.That(skipped, Has.All.Matches<string>(k => k.EndsWith("relative_position_index", StringComparison.Ordinal) || k.StartsWith("fc.", StringComparison.Ordinal)),
            "only checked buffers and the detector's unused classifier are not loaded");
        foreach (var (key, value) in back)
        {
            Assert.That(value.Shape, Is.EqualTo(fixture.Weights[key].Shape), key);
            Assert.That(value.Values, Is.EqualTo(fixture.Weights[key].Values), key);
        }
        if (fixture.Family == "videomae")
        {
            var qkvBias = model.StateDict()["blocks.0.attn.qkv.bias"].ToArray();
            int c = qkvBias.Length / 3;
            Assert.That(qkvBias[c..(2 * c)], Has.All.EqualTo(0f), "VideoMAE has no k bias: its part of our qkv bias is zero");
        }
    }

    [Test]
    public void Planted_deviations_from_the_official_code_make_the_fixture_fail()
    {
        var fixture = ReferenceFixture.Load("swin-small-map");
        double official = Error(ReferenceRun.Of(fixture, _cpu));
        double trueOffsets = Error(ReferenceRun.Of(fixture, _cpu, swinVariant: c => c with { BiasIndex = SwinBiasIndex.TrueOffsets }));
        Assert.That(official, Is.LessThan(1e-4));
        Assert.That(trueOffsets, Is.GreaterThan(1e-2), "the true-offset bias is a different function where the map is smaller than the window");
        var widen = Assert.Throws<StateDictMismatchException>(() => ReferenceRun.Of(fixture, _cpu, swinVariant: c => c with { SmallGridMerge = SwinSmallGridMerge.WidenChannels }));
        Assert.That(widen!.Mismatched, Has.Some.Contains("layers.1.downsample.norm.weight: shape [16] in the model vs [64] in backbone.layers.1.downsample.norm.weight"));
        Assert.That(widen.Mismatched, Has.Some.Contains("layers.1.downsample.reduction.weight"));

        double Error(ReferenceRun run) => ReferenceFixtureTests.RelativeError(run.Logits, fixture.Logits.Values);
    }

    [Test]
    public void A_vit_that_cannot_express_videomae_is_told_every_key_at_once()
    {
        var fixture = ReferenceFixture.Load("videomae-tiny");
        var config = new VideoVitConfig("cls-vit", 16, 2, 2, (2, 4, 4), 5, [3, 4, 8, 8], MlpRatio: 4f, DropPath: 0f);
        using var vit = new VideoVit(config, new RandomSource(1), _cpu);
        var e = Assert.Throws<StateDictMismatchException>(() => OfficialWeights.For(vit, OfficialLayout.VideoMae).Load(fixture.Weights))!;
        Assert.That(e.Missing, Has.Some.StartsWith("cls_token [1, 1, 16]: VideoMae has no counterpart"));
        Assert.That(e.Missing, Has.Some.StartsWith("pos_embed [1, 9, 16]: VideoMae has no counterpart"));
        Assert.That(e.Missing, Has.Some.StartsWith("norm.weight"));
        Assert.That(e.Unexpected, Has.Some.StartsWith("fc_norm.weight [16]"));
        Assert.That(vit.StateDict()["head.weight"].ToArray(), Is.Not.EqualTo(fixture.Weights["classifier.weight"].Values), "nothing is loaded when anything is wrong");
    }

    [Test]
    public void Missing_unexpected_and_wrong_buffers_are_reported_together()
    {
        var fixture = ReferenceFixture.Load("swin-shifted");
        var weights = fixture.Weights.ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);
        weights.Remove("backbone.layers.0.blocks.1.attn.qkv.weight");
        weights["backbone.layers.9.blocks.0.norm1.weight"] = new HostArray([8], new float[8]);
        var index = weights["backbone.layers.0.blocks.0.attn.relative_position_index"];
        weights["backbone.layers.0.blocks.0.attn.relative_position_index"] = index with { Values = [.. index.Values.Reverse()] };
        using var model = ReferenceRun.Build(ReferenceFixture.Load("swin-shifted"), _cpu);
        var e = Assert.Throws<StateDictMismatchException>(() => OfficialWeights.For(model, OfficialLayout.VideoSwin).Load(weights))!;
        Assert.That(e.Missing, Is.EqualTo(new[] { "backbone.layers.0.blocks.1.attn.qkv.weight (for layers.0.blocks.1.attn.qkv.weight [24, 8])" }));
        Assert.That(e.Unexpected, Is.EqualTo(new[] { "backbone.layers.9.blocks.0.norm1.weight [8]" }));
        Assert.That(e.Mismatched, Has.One.StartsWith("backbone.layers.0.blocks.0.attn.relative_position_index: [8, 8] differs from the index of our window (2, 2, 2)"));
        Assert.That(e.Message, Does.Contain("qkv.weight").And.Contain("layers.9").And.Contain("relative_position_index"));
    }

    [Test]
    public void A_layout_refuses_a_model_of_another_family()
    {
        using var r21d = ModelFactory.Create("r21d-nano", new RandomSource(1), _cpu);
        Assert.That(() => OfficialWeights.For(r21d, OfficialLayout.VideoSwin),
            Throws.ArgumentException.With.Message.Contains("VideoSwin state dicts load into a VideoSwinTransformer, not a R21dNet"));
    }
}
