using System.Text.Json;
using Sbp.Autograd;
using Sbp.Models.Architectures;
using Sbp.Models.Pretrained;
using Sbp.Rng;
using Sbp.Tensors;

namespace Sbp.Models.Tests.Pretrained;

/// <summary>
/// 2-D ImageNet Swin weights inflated into a Video Swin as the official inflate_weights does: the bicubic table
/// resize against PyTorch's own F.interpolate (values written by torch, tools/PthFixtures/make_bicubic_fixture.py),
/// a clip of identical frames embedding as the image did, tables tiled over time, index buffers and the image head
/// left out, everything else loaded as it was.
/// </summary>
public sealed class SwinInflationTests
{
    static readonly VideoSwinConfig Config = new("inflate", 8, [2, 2], [1, 2], (2, 4, 4), (2, 3, 3), 4, [3, 4, 16, 16], DropPath: 0f, HeadDropout: 0f);

    [Test]
    public void Bicubic_resize_matches_torch_interpolate()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Fixtures", "Inflation", "bicubic.json")));
        int cases = 0;
        foreach (var c in doc.RootElement.GetProperty("cases").EnumerateArray())
        {
            int[] size = [.. c.GetProperty("in").EnumerateArray().Select(e => e.GetInt32())], output = [.. c.GetProperty("out").EnumerateArray().Select(e => e.GetInt32())];
            var inputs = c.GetProperty("input").EnumerateArray().ToList();
            var expected = c.GetProperty("expected").EnumerateArray().ToList();
            for (int h = 0; h < inputs.Count; h++)
            {
                float[] x = [.. inputs[h].EnumerateArray().Select(e => e.GetSingle())], want = [.. expected[h].EnumerateArray().Select(e => e.GetSingle())];
                var got = SwinInflation.Bicubic(x, size[0], size[1], output[0], output[1]);
                Assert.That(got, Is.EqualTo(want).Within(1e-5f), $"{size[0]}x{size[1]} -> {output[0]}x{output[1]}, head {h}");
            }
            cases++;
        }
        Assert.That(cases, Is.EqualTo(5));   // float32 sums in another order than torch's: differences of ~2e-6 on values of order 1
    }

    /// <summary>An image Swin's state dict from a video model's official export: embedding summed over time, the dt = 0 block of each table.</summary>
    static Dictionary<string, HostArray> ImageWeights(VideoSwinTransformer video, int tableSide)
    {
        var official = OfficialWeights.For(video, OfficialLayout.VideoSwin).ToOfficial(video.StateDict());
        var image = new Dictionary<string, HostArray>(StringComparer.Ordinal);
        var rng = new Random(5);
        foreach (var (key, v) in official)
        {
            string name = key.StartsWith("backbone.", StringComparison.Ordinal) ? key[9..] : key;
            if (name == "patch_embed.proj.weight")
            {
                int c = v.Shape[0] * v.Shape[1], t = v.Shape[2], plane = v.Shape[3] * v.Shape[4];
                var sum = new float[c * plane];
                for (int i = 0; i < c; i++) for (int k = 0; k < t; k++) for (int j = 0; j < plane; j++) sum[i * plane + j] += v.Values[(i * t + k) * plane + j];
                image[name] = new HostArray([v.Shape[0], v.Shape[1], v.Shape[3], v.Shape[4]], sum);
            }
            else if (name.EndsWith("relative_position_bias_table", StringComparison.Ordinal))
                image[name] = new HostArray([tableSide * tableSide, v.Shape[1]], [.. Enumerable.Range(0, tableSide * tableSide * v.Shape[1]).Select(_ => (float)rng.NextDouble())]);
            else if (name.StartsWith("cls_head", StringComparison.Ordinal))
                image[name.Replace("cls_head.fc_cls", "head", StringComparison.Ordinal)] = new HostArray([1000, .. v.Shape[1..]], new float[1000 * (v.Values.Length / v.Shape[0])]);
            else image[name] = v;
        }
        image["layers.0.blocks.1.attn_mask"] = new HostArray([4, 18, 18], new float[4 * 18 * 18]);
        image["layers.0.blocks.0.attn.relative_position_index"] = new HostArray([9, 9], new float[81]);
        return image;
    }

    [TestCase(5)]    // the image window is the video window's H x W: tables only tiled over time
    [TestCase(13)]   // an ImageNet window of 7: tables resized bicubically to 5 x 5 first
    public void An_image_swin_inflates_into_a_video_swin(int tableSide)
    {
        var cpu = Device.CreateCpu("inflate");
        using var source = new VideoSwinTransformer(Config, new RandomSource(1), cpu);
        var image = ImageWeights(source, tableSide);
        using var model = new VideoSwinTransformer(Config, new RandomSource(2), cpu);
        var head = model.Head.Weight.ToArray();
        string said = PretrainedInit.Load(model, image, resetHead: false);
        Assert.That(said, Does.StartWith("inflated from a 2-D image Swin (4 entries dropped").And.Contain("the head starts fresh"));
        Assert.That(model.Head.Weight.ToArray(), Is.EqualTo(head), "the image head (1000 classes) is not used");

        var w2d = image["patch_embed.proj.weight"];
        var w3d = model.PatchEmbed.Proj.Weight.ToArray();
        Assert.That(w3d, Is.EqualTo(Enumerable.Range(0, w3d.Length).Select(i => w2d.Values[(i / 32) * 16 + i % 16] / 2).ToArray()), "each time slice is the image weight / T");

        var table = model.Stages[1].Blocks[0].Attn.RelativePositionBiasTable.ToArray();
        var table2d = image["layers.1.blocks.0.attn.relative_position_bias_table"];
        float[] plane = tableSide == 5 ? table2d.Values : Resized(table2d, 2);
        Assert.That(table, Is.EqualTo(Enumerable.Repeat(plane, 3).SelectMany(p => p).ToArray()), "the 2-D table tiled over dt = -1, 0, 1");
        Assert.That(model.StateDict()["layers.1.blocks.1.mlp.fc1.weight"].ToArray(), Is.EqualTo(image["layers.1.blocks.1.mlp.fc1.weight"].Values));

        // A clip of identical frames embeds as the image does (before the patch norm).
        var frame = Enumerable.Range(0, 3 * 16 * 16).Select(i => MathF.Sin(i * 0.37f)).ToArray();
        using var scope = TensorScope.Begin();
        using var noGrad = Tape.NoGrad();
        var clip = Tensor.FromArray([.. Enumerable.Range(0, 3).SelectMany(c => Enumerable.Repeat(frame.Skip(c * 256).Take(256), 4).SelectMany(f => f))], new Shape(1, 3, 4, 16, 16), cpu);
        var video = model.PatchEmbed.Proj.Forward(clip).ToArray();          // [1, 8, 2, 4, 4]
        var still = Ops.Conv2d(Tensor.FromArray(frame, new Shape(1, 3, 16, 16), cpu), Tensor.FromArray(w2d.Values, new Shape(w2d.Shape), cpu),
            model.PatchEmbed.Proj.Bias, stride: [4, 4]).ToArray();          // [1, 8, 4, 4]
        for (int c = 0; c < 8; c++)
            for (int t = 0; t < 2; t++)
                for (int p = 0; p < 16; p++)
                    Assert.That(video[(c * 2 + t) * 16 + p], Is.EqualTo(still[c * 16 + p]).Within(1e-5f), $"channel {c}, time {t}, position {p}");
    }

    static float[] Resized(HostArray table, int heads)
    {
        var result = new float[25 * heads];
        for (int h = 0; h < heads; h++)
        {
            var plane = SwinInflation.Bicubic([.. Enumerable.Range(0, 169).Select(r => table.Values[r * heads + h])], 13, 13, 5, 5);
            for (int r = 0; r < 25; r++) result[r * heads + h] = plane[r];
        }
        return result;
    }
}
