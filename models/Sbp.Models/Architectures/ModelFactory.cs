using Sbp.Rng;
using Sbp.Stochastic;
using Sbp.Tensors;

namespace Sbp.Models.Architectures;

/// <summary>Builds a model by config name ("swin-t", "vit-micro", "det-r50", ...), optionally for another class count and clip size.</summary>
public static class ModelFactory
{
    static readonly Dictionary<string, object> Configs = new()
    {
        ["swin-t"] = VideoSwinConfig.SwinT,
        ["swin-s"] = VideoSwinConfig.SwinS,
        ["swin-micro"] = VideoSwinConfig.SwinMicro,
        ["swin-micro-stem"] = VideoSwinConfig.SwinMicroStem,
        ["swin-nano"] = VideoSwinConfig.SwinNano,
        ["vit-t"] = VideoVitConfig.VitT,
        ["vit-micro"] = VideoVitConfig.VitMicro,
        ["vit-nano"] = VideoVitConfig.VitNano,
        ["videomae-b"] = VideoVitConfig.VideoMaeB,
        ["det-r50"] = FrameDetectorConfig.DetR50,
        ["det-r18"] = FrameDetectorConfig.DetR18,
        ["det-micro"] = FrameDetectorConfig.DetMicro,
        ["det-nano"] = FrameDetectorConfig.DetNano,
        ["r21d-micro"] = R21dConfig.R21dMicro,
        ["r21d-nano"] = R21dConfig.R21dNano,
        ["r2plus1d-18"] = VideoResNetConfig.R2Plus1d18,
        ["r2plus1d-nano"] = VideoResNetConfig.R2Plus1dNano,
    };

    /// <summary>Every config name, in a stable order.</summary>
    public static IReadOnlyList<string> Names { get; } = [.. Configs.Keys];

    /// <summary>The config record of <paramref name="name"/> (a <see cref="VideoSwinConfig"/>, <see cref="VideoVitConfig"/>, <see cref="FrameDetectorConfig"/>, <see cref="R21dConfig"/> or <see cref="VideoResNetConfig"/>).</summary>
    public static object Config(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return Configs.TryGetValue(name, out var c)
            ? c
            : throw new ArgumentException($"ModelFactory: no model config named '{name}'; known: {string.Join(", ", Names)}.", nameof(name));
    }

    /// <summary>The mask kind the model of config <paramref name="name"/> draws by default at <paramref name="keep"/>, before it is built.</summary>
    public static MaskKind DefaultMaskKind(string name, double keep) =>
        Configs.GetValueOrDefault(name) is VideoVitConfig ? VideoVit.TokenMaskKind(keep) : MaskKind.Strided;

    /// <summary>
    /// The peak learning rate `sbp train` and `compare` use for <paramref name="name"/> when none is given: 2e-3 for the
    /// convolutional models; 1.5e-4 for Video Swin and 2e-4 for the ViTs, which stay at chance on the 8-class synthetic
    /// task at 2e-3 and 5e-4 (benchmarks/results/transformers-8class).
    /// </summary>
    public static float DefaultLearningRate(string name) => Config(name) switch
    {
        VideoSwinConfig => 1.5e-4f,
        VideoVitConfig => 2e-4f,
        _ => 2e-3f,
    };

    /// <summary>Whether the model of config <paramref name="name"/> has stochastic depth (drop path) to set: Video Swin and the ViTs.</summary>
    public static bool HasDropPath(string name) => Config(name) is VideoSwinConfig or VideoVitConfig;

    /// <summary>Whether the model of config <paramref name="name"/> predicts a class per frame (<see cref="VideoModel.PerFrameLabels"/>), before it is built.</summary>
    public static bool PerFrameLabels(string name) => Config(name) is FrameDetectorConfig;

    /// <summary>
    /// The model of config <paramref name="name"/>, its weights drawn from <paramref name="rng"/>.
    /// <paramref name="numClasses"/>, <paramref name="frames"/>, <paramref name="height"/> and
    /// <paramref name="width"/> replace the config's class count and sample clip size when given
    /// (the ViT's position embedding follows the clip size, which must be a multiple of its tubelet);
    /// <paramref name="dropPath"/> replaces the stochastic depth of a transformer (<see cref="HasDropPath"/>).
    /// </summary>
    public static VideoModel Create(string name, RandomSource rng, Device? device = null, int? numClasses = null, int? frames = null,
        int? height = null, int? width = null, float? dropPath = null)
    {
        ArgumentNullException.ThrowIfNull(rng);
        if (numClasses is < 1) throw new ArgumentOutOfRangeException(nameof(numClasses), $"ModelFactory.Create('{name}'): the class count must be >= 1, got {numClasses}.");
        if (frames is < 1 || height is < 1 || width is < 1)
            throw new ArgumentOutOfRangeException(nameof(frames), $"ModelFactory.Create('{name}'): clip sizes must be >= 1, got frames {frames}, height {height}, width {width}.");
        if (dropPath is not null && (!HasDropPath(name) || dropPath is not (>= 0 and < 1)))
            throw new ArgumentOutOfRangeException(nameof(dropPath), HasDropPath(name)
                ? $"ModelFactory.Create('{name}'): the drop-path rate must be in [0, 1), got {dropPath}."
                : $"ModelFactory.Create('{name}'): this model has no stochastic depth (Video Swin and the ViTs have it); pass no drop-path rate.");
        switch (Config(name))
        {
            case VideoSwinConfig s:
            {
                var shape = s.SampleShape;
                return new VideoSwinTransformer(s with { NumClasses = numClasses ?? s.NumClasses, DropPath = dropPath ?? s.DropPath, SampleShape = [shape[0], frames ?? shape[1], height ?? shape[2], width ?? shape[3]] }, rng, device);
            }
            case VideoVitConfig v:
            {
                var shape = v.SampleShape;
                return new VideoVit(v with { NumClasses = numClasses ?? v.NumClasses, DropPath = dropPath ?? v.DropPath, SampleShape = [shape[0], frames ?? shape[1], height ?? shape[2], width ?? shape[3]] }, rng, device);
            }
            case FrameDetectorConfig d:
            {
                var shape = d.SampleShape;
                return new FrameDetector(d with { NumClasses = numClasses ?? d.NumClasses, SampleShape = [frames ?? shape[0], shape[1], height ?? shape[2], width ?? shape[3]] }, rng, device);
            }
            case R21dConfig r:
            {
                var shape = r.SampleShape;
                return new R21dNet(r with { NumClasses = numClasses ?? r.NumClasses, SampleShape = [shape[0], frames ?? shape[1], height ?? shape[2], width ?? shape[3]] }, rng, device);
            }
            case VideoResNetConfig v:
            {
                var shape = v.SampleShape;
                return new VideoResNet(v with { NumClasses = numClasses ?? v.NumClasses, SampleShape = [shape[0], frames ?? shape[1], height ?? shape[2], width ?? shape[3]] }, rng, device);
            }
            default:
                throw new InvalidOperationException($"ModelFactory: config '{name}' has an unknown type.");
        }
    }
}
