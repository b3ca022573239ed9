using System.Text.RegularExpressions;
using Sbp.Models.Architectures;
using Sbp.Nn;
using Sbp.Tensors;

namespace Sbp.Models.Pretrained;

/// <summary>
/// Reads an official implementation's state dict into one of our models (and our gradients or weights back
/// under the official names): one <see cref="KeyRule"/> per entry of our state dict, made from the
/// <see cref="OfficialLayout"/>'s naming. Everything is checked before anything is loaded, and every problem is
/// reported at once by key and shape (<see cref="StateDictMismatchException"/>): official entries a rule needs and
/// the state dict lacks, official entries no rule uses (except buffers the layout checks or ignores, with the
/// reason), and shapes that differ. Where our model cannot express an official configuration (a channel-only Swin
/// merge, a learned ViT position table, a CLS token), that report names the keys and shapes concerned.
/// </summary>
public sealed partial class OfficialWeights
{
    readonly Module _target;

    OfficialWeights(Module target, OfficialLayout layout)
    {
        _target = target;
        Layout = layout;
        Rules = [.. target.StateDict().Keys.Select(k => new KeyRule(k, OfficialParts(layout, k) ?? []))];
    }

    public OfficialLayout Layout { get; }

    /// <summary>Our entries in state-dict order; an empty <see cref="KeyRule.Official"/> list: no official counterpart.</summary>
    public IReadOnlyList<KeyRule> Rules { get; }

    /// <summary>
    /// The mapping for <paramref name="model"/>: a <see cref="VideoSwinTransformer"/>, a <see cref="VideoVit"/>, a
    /// <see cref="FrameDetector"/> (its backbone: torchvision's ResNet) or its <see cref="FrameDetector.ResNetBackbone"/>,
    /// a <see cref="VideoResNet"/>, as <paramref name="layout"/> requires.
    /// </summary>
    public static OfficialWeights For(Module model, OfficialLayout layout)
    {
        ArgumentNullException.ThrowIfNull(model);
        var target = layout == OfficialLayout.TorchvisionResNet && model is FrameDetector d ? d.Backbone : model;
        bool fits = layout switch
        {
            OfficialLayout.VideoSwin => target is VideoSwinTransformer,
            OfficialLayout.VideoMae => target is VideoVit,
            OfficialLayout.TorchvisionResNet => target is FrameDetector.ResNetBackbone,
            OfficialLayout.TorchvisionVideoResNet => target is VideoResNet,
            _ => false,
        };
        if (!fits)
            throw new ArgumentException($"OfficialWeights: {layout} state dicts load into {Expected(layout)}, not a {model.GetType().Name}.", nameof(model));
        return new OfficialWeights(target, layout);
    }

    static string Expected(OfficialLayout layout) => layout switch
    {
        OfficialLayout.VideoSwin => "a VideoSwinTransformer",
        OfficialLayout.VideoMae => "a VideoVit (VideoVitConfig.VideoMaeB or a config with sinusoidal positions and mean pooling)",
        OfficialLayout.TorchvisionResNet => "a FrameDetector or its ResNetBackbone",
        _ => "a VideoResNet",
    };

    /// <summary>The official entries our entry <paramref name="ours"/> is made of, or null when the layout has none.</summary>
    static IReadOnlyList<string?>? OfficialParts(OfficialLayout layout, string ours) => layout switch
    {
        OfficialLayout.VideoSwin => [ours.StartsWith("head.", StringComparison.Ordinal) ? "cls_head.fc_cls." + ours[5..] : "backbone." + ours],
        OfficialLayout.VideoMae => VideoMaeParts(ours),
        OfficialLayout.TorchvisionResNet => [ours.StartsWith("stem.", StringComparison.Ordinal) ? ours[5..] : ours],
        _ => [ours],
    };

    static IReadOnlyList<string?>? VideoMaeParts(string ours)
    {
        if (ours.StartsWith("patch_embed.proj.", StringComparison.Ordinal)) return ["videomae.embeddings.patch_embeddings.projection." + ours[17..]];
        if (ours.StartsWith("fc_norm.", StringComparison.Ordinal)) return [ours];
        if (ours.StartsWith("head.", StringComparison.Ordinal)) return ["classifier." + ours[5..]];
        var m = BlockKey().Match(ours);
        if (!m.Success) return null;
        string layer = $"videomae.encoder.layer.{m.Groups[1].Value}.", part = m.Groups[2].Value, p = m.Groups[3].Value;
        string attn = layer + "attention.attention.";
        return (part, p) switch
        {
            ("attn.qkv", "weight") => [attn + "query.weight", attn + "key.weight", attn + "value.weight"],
            ("attn.qkv", "bias") => [attn + "q_bias", null, attn + "v_bias"],
            ("attn.proj", _) => [layer + "attention.output.dense." + p],
            ("norm1", _) => [layer + "layernorm_before." + p],
            ("norm2", _) => [layer + "layernorm_after." + p],
            ("mlp.fc1", _) => [layer + "intermediate.dense." + p],
            ("mlp.fc2", _) => [layer + "output.dense." + p],
            _ => null,
        };
    }

    [GeneratedRegex(@"^blocks\.(\d+)\.(attn\.qkv|attn\.proj|norm1|norm2|mlp\.fc1|mlp\.fc2)\.(weight|bias)$")]
    private static partial Regex BlockKey();

    /// <summary>Why an official entry no rule uses may be left out (null: it is unexpected).</summary>
    string? Unused(string key)
    {
        if (key.EndsWith(".num_batches_tracked", StringComparison.Ordinal) || key == "num_batches_tracked") return "a batch-norm step counter";
        if (Layout == OfficialLayout.VideoSwin && key.EndsWith(".attn.relative_position_index", StringComparison.Ordinal)) return "checked against our index";
        if (Layout == OfficialLayout.TorchvisionResNet && key is "fc.weight" or "fc.bias") return "torchvision's classifier; the detector classifies frames with its temporal head";
        return null;
    }

    /// <summary>
    /// Our state dict from <paramref name="official"/>: tensors on the model's device (the caller disposes them),
    /// or a <see cref="StateDictMismatchException"/> listing every missing, unused and mis-shaped entry.
    /// </summary>
    /// <param name="official">The official state dict.</param>
    /// <param name="keep">Our entries to load (null: all); the others, and their official entries, are left out (e.g. a head to start fresh).</param>
    public Dictionary<string, Tensor> ToModel(IReadOnlyDictionary<string, HostArray> official, Func<string, bool>? keep = null)
    {
        ArgumentNullException.ThrowIfNull(official);
        var own = _target.StateDict();
        List<string> missing = [], unexpected = [], mismatched = [];
        var used = new HashSet<string>(StringComparer.Ordinal);
        var values = new Dictionary<string, float[]>(StringComparer.Ordinal);
        foreach (var rule in Rules)
        {
            var target = own[rule.Ours];
            if (keep is not null && !keep(rule.Ours))
            {
                foreach (var name in rule.Official) if (name is not null) used.Add(name);
                continue;
            }
            if (rule.Official.Count == 0) { missing.Add($"{rule.Ours} {target.Shape}: {Layout} has no counterpart"); continue; }
            foreach (var name in rule.Official) if (name is not null) used.Add(name);
            var absent = rule.Official.Where(n => n is not null && !official.ContainsKey(n)).ToList();
            if (absent.Count > 0) { missing.AddRange(absent.Select(n => $"{n} (for {rule.Ours} {target.Shape})")); continue; }
            if (Concatenate(rule, official, target.Shape.ToArray()) is { } joined) values[rule.Ours] = joined;
            else mismatched.Add($"{rule.Ours}: shape {target.Shape} in the model vs {string.Join(" + ", rule.Official.Select(n => n is null ? "zeros" : $"{official[n]} in {n}"))}");
        }
        foreach (var (key, array) in official)
        {
            if (used.Contains(key)) continue;
            if (Unused(key) is null) unexpected.Add($"{key} {array}");
            else if (Layout == OfficialLayout.VideoSwin && key.EndsWith(".relative_position_index", StringComparison.Ordinal) && IndexProblem(key, array) is { } why)
                mismatched.Add(why);
        }
        if (missing.Count + unexpected.Count + mismatched.Count > 0)
            throw new StateDictMismatchException($"{_target.GetType().Name} from a {Layout} state dict", missing, unexpected, mismatched);
        return values.ToDictionary(v => v.Key, v => Tensor.FromArray(v.Value, own[v.Key].Shape, _target.Device), StringComparer.Ordinal);
    }

    /// <summary>Loads <paramref name="official"/> into the model (all or nothing, see <see cref="ToModel"/>); entries <paramref name="keep"/> refuses keep their values.</summary>
    public void Load(IReadOnlyDictionary<string, HostArray> official, Func<string, bool>? keep = null)
    {
        var made = ToModel(official, keep);
        try
        {
            // Entries left out keep their values: they are given their own tensors (a no-op copy), so the load stays strict.
            var state = new Dictionary<string, Tensor>(made);
            foreach (var (k, t) in _target.StateDict()) state.TryAdd(k, t);
            _target.LoadStateDict(state);
        }
        finally { foreach (var t in made.Values) t.Dispose(); }
    }

    /// <summary>
    /// Our entries (e.g. gradients by our parameter names, or the model's <see cref="Module.StateDict"/>) under the
    /// official names, split where a rule concatenates; zero parts are dropped. Entries without a rule are skipped.
    /// </summary>
    public Dictionary<string, HostArray> ToOfficial(IReadOnlyDictionary<string, Tensor> ours)
    {
        ArgumentNullException.ThrowIfNull(ours);
        var result = new Dictionary<string, HostArray>(StringComparer.Ordinal);
        foreach (var rule in Rules)
        {
            if (rule.Official.Count == 0 || !ours.TryGetValue(rule.Ours, out var tensor)) continue;
            var shape = tensor.Shape.ToArray();
            var data = tensor.ToArray();
            int row = data.Length / shape[0], rows = shape[0] / rule.Official.Count;
            if (rule.Official.Count == 1) { result[rule.Official[0]!] = new HostArray(shape, data); continue; }
            for (int i = 0; i < rule.Official.Count; i++)
                if (rule.Official[i] is { } name)
                    result[name] = new HostArray([rows, .. shape[1..]], data[(i * rows * row)..((i + 1) * rows * row)]);
        }
        return result;
    }

    /// <summary>The parts joined along axis 0 when their shapes fill <paramref name="shape"/>, else null.</summary>
    static float[]? Concatenate(KeyRule rule, IReadOnlyDictionary<string, HostArray> official, int[] shape)
    {
        if (rule.Official.Count == 1)
        {
            var only = official[rule.Official[0]!];
            return only.Shape.SequenceEqual(shape) ? only.Values : null;
        }
        // Split parts are equal slices of axis 0 (q, k, v); a zero part has the same size.
        if (shape.Length == 0 || shape[0] % rule.Official.Count != 0) return null;
        int[] partShape = [shape[0] / rule.Official.Count, .. shape[1..]];
        int partSize = partShape.Aggregate(1, (a, b) => a * b);
        var joined = new float[partSize * rule.Official.Count];
        for (int i = 0; i < rule.Official.Count; i++)
        {
            if (rule.Official[i] is not { } name) continue;
            var part = official[name];
            if (!part.Shape.SequenceEqual(partShape)) return null;
            part.Values.CopyTo(joined, i * partSize);
        }
        return joined;
    }

    /// <summary>Why an official relative_position_index differs from the index our block uses for its window (null: equal).</summary>
    string? IndexProblem(string key, HostArray array)
    {
        var attnName = key[..^".relative_position_index".Length]["backbone.".Length..];
        if (_target.NamedModules().FirstOrDefault(m => m.Name == attnName).Module is not WindowAttention3d attn) return null;
        var ours = SwinGeometry.RelativePositionIndex(attn.Window, attn.Window);
        int n = attn.Window.T * attn.Window.H * attn.Window.W;
        return array.Shape.SequenceEqual([n, n]) && array.Values.Select(v => (int)v).SequenceEqual(ours) ? null
            : $"{key}: {array} differs from the index of our window {attn.Window} ([{n}, {n}]); the checkpoint was made with another window or index formula";
    }
}
