using System.Text.Json;
using Sbp.IO;
using Sbp.Models.Pretrained;

namespace Sbp.Models.Tests.Reference;

/// <summary>
/// One fixture written by tools/ReferenceFixtures from an independent libtorch implementation of an official model:
/// the weights under the official names, an input ([B, C, T, H, W] or [B, C, H, W]), targets, logits, the
/// cross-entropy loss and "grad.NAME" for every parameter (tools/ReferenceFixtures/README.md).
/// </summary>
public sealed class ReferenceFixture
{
    static readonly HashSet<string> Results = ["input", "target", "logits", "loss"];

    ReferenceFixture(string name, SafeTensorsFile file)
    {
        Name = name;
        Family = file.Metadata["model"];
        Config = JsonDocument.Parse(file.Metadata["config"]).RootElement.Clone();
        BatchNormMode = file.Metadata.GetValueOrDefault("bn_mode");
        var all = PretrainedInit.Read(file.Path, "safetensors");
        Weights = all.Where(kv => !Results.Contains(kv.Key) && !kv.Key.StartsWith("grad.", StringComparison.Ordinal)).ToDictionary(StringComparer.Ordinal);
        Grads = all.Where(kv => kv.Key.StartsWith("grad.", StringComparison.Ordinal) && kv.Key != "grad.input").ToDictionary(kv => kv.Key[5..], kv => kv.Value, StringComparer.Ordinal);
        InputGrad = all.GetValueOrDefault("grad.input");
        Input = all["input"];
        Target = file.ToIntArray("target");
        Logits = all["logits"];
        Loss = all["loss"].Values[0];
    }

    /// <summary>The case name (file name without extension).</summary>
    public string Name { get; }
    /// <summary>"video-swin", "videomae", "resnet" or "r2plus1d".</summary>
    public string Family { get; }
    public JsonElement Config { get; }
    /// <summary>"eval" or "train" for batch-norm models, else null.</summary>
    public string? BatchNormMode { get; }
    public IReadOnlyDictionary<string, HostArray> Weights { get; private set; }

    /// <summary>The same fixture with other weights under the official names (e.g. read from a .pth).</summary>
    public ReferenceFixture WithWeights(IReadOnlyDictionary<string, HostArray> weights)
    {
        var copy = (ReferenceFixture)MemberwiseClone();
        copy.Weights = weights;
        return copy;
    }
    /// <summary>Parameter gradients by official name.</summary>
    public IReadOnlyDictionary<string, HostArray> Grads { get; }
    public HostArray? InputGrad { get; }
    public HostArray Input { get; }
    public int[] Target { get; }
    public HostArray Logits { get; }
    public float Loss { get; }

    public int[] Ints(string key) => [.. Config.GetProperty(key).EnumerateArray().Select(e => e.GetInt32())];
    public int Int(string key) => Config.GetProperty(key).GetInt32();
    public float Float(string key) => Config.GetProperty(key).GetSingle();
    public (int T, int H, int W) Triple(string key) => Ints(key) is [var t, var h, var w] ? (t, h, w) : throw new FormatException($"{Name}: '{key}' is not [T, H, W].");

    /// <summary>The committed fixtures (copied next to the test assembly).</summary>
    public static string Folder => Path.Combine(AppContext.BaseDirectory, "Fixtures", "Reference");

    public static IEnumerable<string> Names() =>
        Directory.Exists(Folder) ? Directory.GetFiles(Folder, "*.safetensors").Select(Path.GetFileNameWithoutExtension).OrderBy(n => n, StringComparer.Ordinal)! : [];

    public static ReferenceFixture Load(string name) => new(name, SafeTensors.Load(Path.Combine(Folder, name + ".safetensors")));
}
