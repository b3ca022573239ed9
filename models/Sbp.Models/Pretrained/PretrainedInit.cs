using Sbp.IO;
using Sbp.Models.Architectures;
using Sbp.Nn;
using Sbp.Tensors;

namespace Sbp.Models.Pretrained;

/// <summary>
/// Starts a model from pretrained weights (<c>sbp train --init</c>): a PyTorch checkpoint (.pth, read by
/// <see cref="TorchCheckpoint"/>) or a safetensors file, under our names (a checkpoint of ours) or an official
/// layout's (<see cref="OfficialWeights"/>: the layout of the model's family). With <c>resetHead</c> the classifier
/// keeps its fresh initialization (a new dataset's classes); without it a class-count difference is refused with that advice.
/// A 2-D ImageNet Swin given to a Video Swin is inflated first (<see cref="SwinInflation"/>) and its head is not used.
/// </summary>
public static class PretrainedInit
{
    /// <summary>
    /// The format <paramref name="path"/> is read in: <paramref name="format"/> ("pth" or "safetensors") or, when null,
    /// from the extension (anything but .safetensors is read as a PyTorch checkpoint). A missing file or an unknown
    /// format is refused here, so the CLI can check --init before any work.
    /// </summary>
    public static string FormatOf(string path, string? format = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path)) throw new ArgumentException($"--init {path}: no such file.");
        format ??= path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase) ? "safetensors" : "pth";
        return format is "pth" or "safetensors" ? format : throw new ArgumentException($"--init-format {format}: use pth or safetensors.");
    }

    /// <summary>The file's tensors by name, float32 on the host.</summary>
    public static IReadOnlyDictionary<string, HostArray> Read(string path, string? format = null)
    {
        if (FormatOf(path, format) == "pth") return TorchCheckpoint.Load(path).Tensors;
        var file = SafeTensors.Load(path);
        return file.Tensors.ToDictionary(t => t.Name, t => new HostArray(t.Shape.ToArray(),
            t.DType == DType.Int32 ? [.. file.ToIntArray(t.Name).Select(v => (float)v)] : file.ToFloatArray(t.Name)), StringComparer.Ordinal);
    }

    /// <summary>Loads <paramref name="weights"/> into <paramref name="model"/> (all or nothing) and says what was done.</summary>
    public static string Load(VideoModel model, IReadOnlyDictionary<string, HostArray> weights, bool resetHead)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(weights);
        string inflated = "";
        if (model is VideoSwinTransformer swin && SwinInflation.IsImageSwin(weights))
        {
            // An ImageNet Swin: inflated to 3-D as the official code does; its 1000-class head cannot serve.
            var dropped = new List<string>();
            weights = SwinInflation.Inflate(weights, swin.Config, dropped);
            inflated = $"inflated from a 2-D image Swin ({dropped.Count} entries dropped: index buffers, attention masks, the image head); ";
            resetHead = true;
        }
        var own = model.StateDict();
        Func<string, bool> keep = k => !(resetHead && IsHead(model, k));
        // The official layout when most of its entries are in the file (it also knows which official buffers to skip), else our names.
        var mapping = model is R21dNet ? null : OfficialWeights.For(model, LayoutOf(model));
        bool official = mapping is not null && mapping.Rules.Count(r => r.Official.Count > 0 && r.Official.All(n => n is null || weights.ContainsKey(n))) * 2 > mapping.Rules.Count;
        try
        {
            if (!official)
            {
                // Module.LoadStateDict checks names and shapes; a head that starts fresh is given its own tensors (a no-op copy).
                var made = weights.Where(kv => keep(kv.Key)).ToDictionary(kv => kv.Key, kv => Tensor.FromArray(kv.Value.Values, new Shape(kv.Value.Shape), model.Device));
                try
                {
                    var state = new Dictionary<string, Tensor>(made);
                    foreach (var (k, t) in own) if (!keep(k)) state[k] = t;
                    model.LoadStateDict(state);
                }
                finally { foreach (var t in made.Values) t.Dispose(); }
                return $"{own.Keys.Count(keep)} tensors under our names{(resetHead ? "; the head starts fresh" : "")}";
            }
            mapping!.Load(weights, keep);
            return $"{inflated}{mapping.Rules.Count(r => keep(r.Ours))} tensors from the {mapping.Layout} layout{(resetHead ? "; the head starts fresh" : "")}";
        }
        catch (StateDictMismatchException e) when (!resetHead && e.Mismatched.Any(m => IsHead(model, m.Split(':')[0])))
        {
            throw new ArgumentException($"--init: the file's classifier does not fit this model's {model.NumClasses} classes ({e.Mismatched.First(m => IsHead(model, m.Split(':')[0]))}); " +
                "add --reset-head to start the head fresh for this dataset.", e);
        }
    }

    /// <summary>The official layout of the model's family.</summary>
    public static OfficialLayout LayoutOf(VideoModel model) => model switch
    {
        VideoSwinTransformer => OfficialLayout.VideoSwin,
        VideoVit => OfficialLayout.VideoMae,
        VideoResNet => OfficialLayout.TorchvisionVideoResNet,
        FrameDetector => OfficialLayout.TorchvisionResNet,
        _ => throw new ArgumentException($"{model.ConfigName} has no official layout; give a checkpoint of ours (safetensors with our names)."),
    };

    /// <summary>Whether our state-dict entry <paramref name="key"/> is the classifier (it depends on the dataset's classes).</summary>
    public static bool IsHead(VideoModel model, string key) => model switch
    {
        VideoResNet => key.StartsWith("fc.", StringComparison.Ordinal),
        FrameDetector => key.StartsWith("head.classifier.", StringComparison.Ordinal),
        _ => key.StartsWith("head.", StringComparison.Ordinal),
    };
}
