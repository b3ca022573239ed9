using Sbp.Autograd;
using Sbp.Models.Architectures;
using Sbp.Models.Pretrained;
using Sbp.Nn;
using Sbp.Rng;
using Sbp.Stochastic;
using Sbp.Tensors;

namespace Sbp.Models.Tests.Reference;

/// <summary>
/// Our model for a <see cref="ReferenceFixture"/>, built from the fixture's configuration, loaded through
/// <see cref="OfficialWeights"/> (the pretrained loader's mapping), run forward and backward on a device:
/// the logits, the loss and every gradient under the official names.
/// </summary>
public sealed record ReferenceRun(float[] Logits, float Loss, Dictionary<string, HostArray> Grads, float[]? InputGrad, int Regions)
{
    /// <summary>Runs <paramref name="fixture"/> on <paramref name="device"/>; with <paramref name="keepAll"/> the model's SBP regions run at keep 1.</summary>
    public static ReferenceRun Of(ReferenceFixture fixture, Device device, bool keepAll = false, Func<VideoSwinConfig, VideoSwinConfig>? swinVariant = null)
    {
        using var model = Build(fixture, device, swinVariant);
        Linear? fc = null;
        try
        {
            if (fixture.Family == "resnet") fc = ResNetClassifier(fixture, device);
            if (fixture.BatchNormMode == "eval") model.Eval(); else model.Train();
            var policy = keepAll ? new SbpPolicy(new KeepMaskPolicy(MaskKind.Strided, 1.0, Seed: 5), model.SbpPlacement) : null;
            return Run(fixture, model, fc, policy);
        }
        finally { fc?.Dispose(); }
    }

    static ReferenceRun Run(ReferenceFixture fixture, VideoModel model, Linear? fc, SbpPolicy? policy)
    {
        var device = model.Device;
        model.ZeroGrad();
        float[] logits, inputGrad;
        float loss;
        int regions;
        using (var scope = TensorScope.Begin())
        using (var tape = Tape.Begin())
        {
            var x = Tensor.FromArray(fixture.Input.Values, new Shape(fixture.Input.Shape), device);
            x.RequiresGrad = true;
            var y = fc is null ? model.Forward(x, policy, 0) : fc.Forward(Ops.Mean(((FrameDetector)model).Backbone.Forward(x), [2, 3]));
            var l = Ops.CrossEntropy(y, Tensor.FromArray(fixture.Target, new Shape(fixture.Target.Length), device));
            regions = tape.Regions.Count;
            tape.Backward(l);
            logits = y.ToArray();
            loss = l.Item();
            inputGrad = x.Grad!.ToArray();
        }
        var mapping = OfficialWeights.For(model, Layout(fixture.Family));
        var prefix = fixture.Family == "resnet" ? "backbone." : "";
        var ours = model.NamedParameters().Where(p => p.Tensor.Grad is not null && p.Name.StartsWith(prefix, StringComparison.Ordinal))
            .ToDictionary(p => p.Name[prefix.Length..], p => p.Tensor.Grad!);
        var grads = mapping.ToOfficial(ours);
        if (fc is not null)
            foreach (var (name, p) in fc.NamedParameters()) grads["fc." + name] = new HostArray(p.Shape.ToArray(), p.Grad!.ToArray());
        return new ReferenceRun(logits, loss, grads, inputGrad, regions);
    }

    public static OfficialLayout Layout(string family) => family switch
    {
        "video-swin" => OfficialLayout.VideoSwin,
        "videomae" => OfficialLayout.VideoMae,
        "resnet" => OfficialLayout.TorchvisionResNet,
        "r2plus1d" => OfficialLayout.TorchvisionVideoResNet,
        _ => throw new ArgumentException($"unknown fixture family '{family}'"),
    };

    /// <summary>Our model for the fixture's configuration with its official weights loaded.</summary>
    public static VideoModel Build(ReferenceFixture f, Device device, Func<VideoSwinConfig, VideoSwinConfig>? swinVariant = null)
    {
        var rng = new RandomSource(1);
        int[] input = f.Ints("input");
        VideoModel model = f.Family switch
        {
            "video-swin" => new VideoSwinTransformer((swinVariant ?? (c => c))(new VideoSwinConfig(f.Name, f.Int("embed_dim"), f.Ints("depths"), f.Ints("heads"),
                f.Triple("patch"), f.Triple("window"), f.Int("num_classes"), input[1..], MlpRatio: f.Float("mlp_ratio"), DropPath: 0f, HeadDropout: 0f)), rng, device),
            "videomae" => new VideoVit(new VideoVitConfig(f.Name, f.Int("hidden"), f.Int("layers"), f.Int("heads"), (f.Int("tubelet"), f.Int("patch"), f.Int("patch")),
                f.Int("num_classes"), input[1..], MlpRatio: (float)f.Int("intermediate") / f.Int("hidden"), DropPath: 0f,
                Positions: VitPositions.Sinusoidal, Pooling: VitPooling.MeanFcNorm, LayerNormEps: 1e-12f), rng, device),
            "resnet" => new FrameDetector(new FrameDetectorConfig(f.Name, f.Ints("widths"), f.Ints("blocks"), f.Config.GetProperty("block").GetString() == "bottleneck",
                f.Int("stem_width"), 7, 2, true, 8, 1, 2, f.Int("num_classes"), [1, .. input[1..]], FreezeBatchNorm: false), rng, device),
            "r2plus1d" => new VideoResNet(new VideoResNetConfig(f.Name, f.Int("stem_mid"), f.Int("stem_width"), f.Ints("widths"), f.Ints("blocks"),
                f.Int("num_classes"), input[1..]), rng, device),
            _ => throw new ArgumentException($"{f.Name}: unknown fixture family '{f.Family}'"),
        };
        try { OfficialWeights.For(model, Layout(f.Family)).Load(f.Weights); }
        catch { model.Dispose(); throw; }
        return model;
    }

    /// <summary>torchvision's fc on the pooled backbone features (the detector has a temporal head instead).</summary>
    static Linear ResNetClassifier(ReferenceFixture f, Device device)
    {
        var w = f.Weights["fc.weight"];
        var fc = new Linear(w.Shape[1], w.Shape[0], new RandomSource(1), device: device);
        using var weight = Tensor.FromArray(w.Values, new Shape(w.Shape), device);
        using var bias = Tensor.FromArray(f.Weights["fc.bias"].Values, new Shape(w.Shape[0]), device);
        fc.LoadStateDict(new Dictionary<string, Tensor> { ["weight"] = weight, ["bias"] = bias });
        return fc;
    }
}
