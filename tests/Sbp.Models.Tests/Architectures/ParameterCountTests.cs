using Sbp.Models.Architectures;
using Sbp.Rng;
using Sbp.Tensors;

namespace Sbp.Models.Tests.Architectures;

/// <summary>
/// Parameter counts of every config against per-layer formulas written here from the papers'
/// layer lists (not from the models), and against published totals: Video Swin-T 28.2 M with a
/// 400-class head, torchvision ResNet-18 / ResNet-50 without their fc layers.
/// </summary>
public sealed class ParameterCountTests : ModelTestBase
{
    static long Lin(long i, long o, bool bias = true) => i * o + (bias ? o : 0);
    static long Ln(long c) => 2 * c;

    /// <summary>Video Swin: patch embed, blocks (two LNs, qkv, relative bias table, proj, MLP), merges, norm, head.</summary>
    static (long Total, long[] Stages) SwinFormula(VideoSwinConfig c)
    {
        var (pt, ph, pw) = c.Patch;
        var (wt, wh, ww) = c.Window;
        // an optional stem: Conv3d 3x3x3 without bias and BatchNorm (weight and bias), feeding the patch projection
        long stem = c.StemChannels > 0 ? 3L * c.StemChannels * 27 + Ln(c.StemChannels) : 0, projIn = c.StemChannels > 0 ? c.StemChannels : 3;
        long embed = stem + projIn * c.EmbedDim * pt * ph * pw + c.EmbedDim + (c.PatchNorm ? Ln(c.EmbedDim) : 0);
        var stages = new long[c.Depths.Length];
        // The token grid per stage: a downsample merges 2 x 2 neighbours only while the grid is larger than 2 x 2.
        long gh = (c.SampleShape[2] + ph - 1) / ph, gw = (c.SampleShape[3] + pw - 1) / pw;
        for (int s = 0; s < c.Depths.Length; s++)
        {
            bool spatial = gh > 2 || gw > 2;
            if (spatial) (gh, gw) = ((gh + 1) / 2, (gw + 1) / 2);
            long dim = (long)c.EmbedDim << s, hidden = (long)(dim * c.MlpRatio);
            long block = Ln(dim) + Lin(dim, 3 * dim, c.QkvBias) + (2L * wt - 1) * (2 * wh - 1) * (2 * ww - 1) * c.Heads[s] + Lin(dim, dim)
                         + Ln(dim) + Lin(dim, hidden) + Lin(hidden, dim);
            long mergeIn = spatial ? 4 * dim : dim;
            long merge = s < c.Depths.Length - 1 ? Ln(mergeIn) + Lin(mergeIn, 2 * dim, bias: false) : 0;
            stages[s] = c.Depths[s] * block + merge;
        }
        long features = (long)c.EmbedDim << (c.Depths.Length - 1);
        return (embed + stages.Sum() + Ln(features) + Lin(features, c.NumClasses), stages);
    }

    static long VitFormula(VideoVitConfig c)
    {
        long d = c.EmbedDim, hidden = (long)(d * c.MlpRatio);
        var (tt, th, tw) = c.Tubelet;
        long tokens = (long)(c.SampleShape[1] / tt) * (c.SampleShape[2] / th) * (c.SampleShape[3] / tw);
        long embed = 3 * d * tt * th * tw + d;
        long block = Ln(d) + Lin(d, 3 * d, c.QkvBias) + Lin(d, d) + Ln(d) + Lin(d, hidden) + Lin(hidden, d);
        long cls = c.HasClsToken ? d : 0, positions = c.Positions == VitPositions.Learned ? (c.HasClsToken ? 1 + tokens : tokens) * d : 0;
        return embed + cls + positions + c.Depth * block + Ln(d) + Lin(d, c.NumClasses);
    }

    /// <summary>torchvision ResNet (BasicBlock or Bottleneck, BN weight and bias) without fc.</summary>
    static long ResNetFormula(FrameDetectorConfig c)
    {
        long Conv(long i, long o, long k) => i * o * k * k;
        long total = Conv(3, c.StemWidth, c.StemKernel) + Ln(c.StemWidth);
        long inCh = c.StemWidth;
        for (int s = 0; s < 4; s++)
            for (int j = 0; j < c.Blocks[s]; j++)
            {
                bool strided = j == 0 && s > 0;
                long o = c.Widths[s];
                if (c.Bottleneck)
                {
                    long w = o / 4;
                    total += Conv(inCh, w, 1) + Ln(w) + Conv(w, w, 3) + Ln(w) + Conv(w, o, 1) + Ln(o);
                }
                else total += Conv(inCh, o, 3) + Ln(o) + Conv(o, o, 3) + Ln(o);
                if (strided || inCh != o) total += Conv(inCh, o, 1) + Ln(o);
                inCh = o;
            }
        return total;
    }

    static long HeadFormula(FrameDetectorConfig c)
    {
        long d = c.HeadDim;
        long block = Ln(d) + Lin(d, 3 * d) + Lin(d, d) + Ln(d) + Lin(d, 4 * d) + Lin(4 * d, d);
        return Lin(c.Widths[3], d) + c.HeadDepth * block + Ln(d) + Lin(d, c.NumClasses);
    }

    [TestCase("swin-t")]
    [TestCase("swin-s")]
    [TestCase("swin-micro")]
    [TestCase("swin-micro-stem")]
    [TestCase("swin-nano")]
    public void Swin_counts_match_the_per_layer_formula(string name)
    {
        using var m = (VideoSwinTransformer)ModelFactory.Create(name, new RandomSource(1), Device.CreateCpu(name));
        var (total, stages) = SwinFormula(m.Config);
        var summary = m.Summary();
        Assert.That(m.ParameterCount(), Is.EqualTo(total));
        Assert.That(summary.Total, Is.EqualTo(total), "the summary's rows must cover every parameter once");
        for (int s = 0; s < stages.Length; s++) Assert.That(summary[$"stage{s + 1}"], Is.EqualTo(stages[s]), $"stage {s + 1}");
    }

    [Test]
    public void Swin_with_a_convolutional_stem_counts_match_the_per_layer_formula()
    {
        var config = VideoSwinConfig.SwinNano with { StemChannels = 6 };
        using var m = new VideoSwinTransformer(config, new RandomSource(1), Device.CreateCpu("swin-nano with a stem"));
        Assert.That(m.ParameterCount(), Is.EqualTo(SwinFormula(config).Total));
        Assert.That(m.NamedParameters().Select(p => p.Name).Where(n => n.StartsWith("patch_embed.stem.", StringComparison.Ordinal)),
            Is.EquivalentTo(new[] { "patch_embed.stem.0.weight", "patch_embed.stem.1.weight", "patch_embed.stem.1.bias" }));
    }

    [Test]
    public void Swin_configs_have_the_published_counts()
    {
        // The models equal the formula (above); the formula on the configs gives the papers' totals.
        Assert.That(SwinFormula(VideoSwinConfig.SwinT).Total, Is.InRange(28_150_000L, 28_250_000L));   // Video Swin-T, K400: 28.2 M
        Assert.That(SwinFormula(VideoSwinConfig.SwinS).Total, Is.InRange(49_750_000L, 49_850_000L));   // Video Swin-S, K400: 49.8 M
    }

    [TestCase("vit-t")]
    [TestCase("vit-micro")]
    [TestCase("vit-nano")]
    [TestCase("videomae-b")]
    public void Vit_counts_match_the_per_layer_formula(string name)
    {
        using var m = (VideoVit)ModelFactory.Create(name, new RandomSource(1), Device.CreateCpu(name));
        Assert.That(m.ParameterCount(), Is.EqualTo(VitFormula(m.Config)));
        Assert.That(m.Summary().Total, Is.EqualTo(m.ParameterCount()));
    }

    [Test]
    public void R2plus1d_18_has_torchvisions_count()
    {
        // torchvision.models.video.r2plus1d_18: 31,505,325 parameters (its weights' meta "num_params"), the 400-class fc included.
        using var m = (VideoResNet)ModelFactory.Create("r2plus1d-18", new RandomSource(1), Device.CreateCpu("r2plus1d-18"));
        Assert.That(m.ParameterCount(), Is.EqualTo(31_505_325L));
        Assert.That(m.Summary().Total, Is.EqualTo(m.ParameterCount()));
    }

    [Test]
    public void VideoMae_b_has_the_hf_count_plus_the_k_bias()
    {
        // HF VideoMAEForVideoClassification (ViT-B/16, K400): 86,534,800 parameters by hand (embedding 1,180,416,
        // 12 layers of 7,087,104, fc_norm 1,536, classifier 307,600); ours also holds a zero k bias per layer.
        Assert.That(VitFormula(VideoVitConfig.VideoMaeB), Is.EqualTo(86_534_800L + 12 * 768));
    }

    [TestCase("det-r50")]
    [TestCase("det-r18")]
    [TestCase("det-micro")]
    [TestCase("det-nano")]
    public void Detector_counts_match_the_per_layer_formula(string name)
    {
        using var m = (FrameDetector)ModelFactory.Create(name, new RandomSource(1), Device.CreateCpu(name));
        var summary = m.Summary();
        long backbone = new[] { "stem", "layer1", "layer2", "layer3", "layer4" }.Sum(p => summary["backbone." + p]);
        Assert.That(backbone, Is.EqualTo(ResNetFormula(m.Config)));
        Assert.That(summary["head"], Is.EqualTo(HeadFormula(m.Config)));
        Assert.That(m.ParameterCount(), Is.EqualTo(summary.Total));
    }

    [Test]
    public void Detector_backbones_have_the_torchvision_counts()
    {
        // torchvision: resnet18 11,689,512 and resnet50 25,557,032 parameters, fc (in x 1000 + 1000) included.
        Assert.That(ResNetFormula(FrameDetectorConfig.DetR18), Is.EqualTo(11_689_512 - (512 * 1000 + 1000)));
        Assert.That(ResNetFormula(FrameDetectorConfig.DetR50), Is.EqualTo(25_557_032 - (2048 * 1000 + 1000)));
    }

    [Test]
    public void Summary_lists_every_part_and_the_total()
    {
        var m = Build("swin-nano");
        var text = m.Summary().ToString();
        Assert.That(text, Does.Contain("patch_embed").And.Contain("stage4").And.Contain("head").And.Contain("total"));
        Assert.That(m.Summary().Rows.Select(r => r.Part), Is.Unique);
        Assert.That(() => m.Summary()["nope"], Throws.TypeOf<KeyNotFoundException>());
    }

    [Test]
    public void Factory_overrides_classes_and_clip_size()
    {
        var swin = (VideoSwinTransformer)Own(ModelFactory.Create("swin-nano", new RandomSource(1), Device, numClasses: 7, frames: 6, height: 12, width: 20));
        Assert.That(swin.NumClasses, Is.EqualTo(7));
        Assert.That(swin.SampleShape, Is.EqualTo(new[] { 3, 6, 12, 20 }));
        Assert.That(swin.ParameterCount(), Is.EqualTo(SwinFormula(swin.Config).Total));
        var vit = (VideoVit)Own(ModelFactory.Create("vit-nano", new RandomSource(1), Device, numClasses: 4, frames: 8));
        Assert.That(vit.PosEmbed!.Shape, Is.EqualTo(new Shape(1, 1 + 4 * 2 * 2, 16)), "the position embedding follows the clip size");
        Assert.That(vit.ParameterCount(), Is.EqualTo(VitFormula(vit.Config)));
        var det = (FrameDetector)Own(ModelFactory.Create("det-nano", new RandomSource(1), Device, numClasses: 9, frames: 12));
        Assert.That(det.SampleShape, Is.EqualTo(new[] { 12, 3, 8, 8 }));
        Assert.That(det.Summary()["head"], Is.EqualTo(HeadFormula(det.Config)));
        Assert.That(() => ModelFactory.Create("vit-nano", new RandomSource(1), Device, frames: 5), Throws.ArgumentException.With.Message.Contains("tubelet"));
    }

    [Test]
    public void Factory_knows_every_config_and_names_them_in_errors()
    {
        Assert.That(ModelFactory.Names, Has.Member("swin-t").And.Member("vit-t").And.Member("det-r50"));
        Assert.That(() => ModelFactory.Create("swin-xl", new RandomSource(1), Device),
            Throws.ArgumentException.With.Message.Contains("swin-xl").And.Message.Contains("swin-t"));
    }

    [TestCase("swin-nano")]
    [TestCase("vit-nano")]
    [TestCase("det-nano")]
    [TestCase("r21d-nano")]
    public void What_the_factory_says_before_building_is_what_the_model_says(string name)
    {
        using var model = ModelFactory.Create(name, new RandomSource(1), Device);
        Assert.That(ModelFactory.PerFrameLabels(name), Is.EqualTo(model.PerFrameLabels));
        Assert.That(ModelFactory.DefaultMaskKind(name, 0.5), Is.EqualTo(model.DefaultMaskKind(0.5)));
    }
}
