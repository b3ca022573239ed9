using System.CommandLine;
using System.Globalization;
using Sbp.Models.Architectures;
using Sbp.Models.Data;
using Sbp.Models.Training;
using Sbp.Stochastic;
using Sbp.Tensors;

namespace Sbp.Models.Cli;

/// <summary>The options train, eval and compare share: model, data, schedule, SBP settings, output.</summary>
public sealed class TrainOptions
{
    static readonly TrainConfig Defaults = new();

    public readonly Option<string> Model = new("--model") { Description = "model config (swin-nano, swin-micro, swin-t, vit-nano, vit-micro, det-nano, det-micro, ...)", DefaultValueFactory = _ => Defaults.Model };
    public readonly Option<string> Data = new("--data") { Description = "dataset: synthetic-actions, synthetic-detection, a folder from `sbp datasets make`, a list file or an annotation file", DefaultValueFactory = _ => DatasetCatalog.Actions };
    public readonly Option<int?> Frames = new("--frames") { Description = "frames per clip" };
    public readonly Option<int?> Size = new("--size") { Description = "frame height and width" };
    public readonly Option<int?> Classes = new("--classes") { Description = "number of classes" };
    public readonly Option<int?> TrainCount = new("--train-count") { Description = "synthetic data: training samples" };
    public readonly Option<int?> ValCount = new("--val-count") { Description = "synthetic data: held-out samples" };
    public readonly Option<float?> Noise = new("--noise") { Description = "synthetic data: per-pixel noise std in [0, 1] (harder when larger)" };
    public readonly Option<float?> Speed = new("--speed") { Description = "synthetic data: motion relative to the default 1 (harder when smaller)" };
    public readonly Option<float?> ObjectSize = new("--object-size") { Description = "synthetic data: object size as a fraction of the frame" };
    public readonly Option<int> Epochs = new("--epochs") { Description = "training epochs", DefaultValueFactory = _ => Defaults.Epochs };
    public readonly Option<int> Batch = new("--batch") { Description = "batch size", DefaultValueFactory = _ => Defaults.BatchSize };
    public readonly Option<float> Lr = new("--lr") { Description = "peak learning rate (AdamW, warmup then cosine)", DefaultValueFactory = _ => Defaults.LearningRate };
    public readonly Option<float> WeightDecay = new("--weight-decay") { Description = "AdamW weight decay (not on norms and biases)", DefaultValueFactory = _ => Defaults.WeightDecay };
    public readonly Option<ulong> Seed = new("--seed") { Description = "seed of weights, masks, data order and synthetic data", DefaultValueFactory = _ => Defaults.Seed };
    public readonly Option<int?> Steps = new("--steps") { Description = "stop each epoch after this many steps" };
    public readonly Option<string?> Mask = new("--mask") { Description = "SBP mask: strided (fixed centred stride, the official CVPR code), strided-random (offset drawn per step), grid (tokens) or random (the paper's wording); default: the model's (strided over frames, grid over ViT tokens)" };
    public readonly Option<string> MaskPer = new("--mask-per") { Description = "draw a new SBP mask per layer (independent masks compose: an early layer's input gradient survives only where every later mask kept the position), per step (all layers share it) or per model (one mask for the whole run)", DefaultValueFactory = _ => "step" };
    public readonly Option<string> Caching = new("--caching") { Description = "SBP caching: sparse-cache or recompute", DefaultValueFactory = _ => "sparse-cache" };
    public readonly Option<bool> Rescale = new("--rescale") { Description = "scale SBP gradients by 1/keep" };
    public readonly Option<long?> ProfileStep = new("--profile-step") { Description = "time every op of this step (0-based) and print the table: forward and backward, per op, in SBP regions or not" };
    public readonly Option<string> Coverage = new("--sbp-blocks") { Description = "which blocks are SBP regions: model (the paper's choice) or all", DefaultValueFactory = _ => "model" };
    public readonly Option<int> Workers = new("--workers") { Description = "data loading threads", DefaultValueFactory = _ => Defaults.Workers };

    public void AddTo(Command command)
    {
        foreach (var o in new Option[] { Model, Data, Frames, Size, Classes, TrainCount, ValCount, Noise, Speed, ObjectSize, Epochs, Batch, Lr, WeightDecay, Seed, Steps, Mask, MaskPer, Caching, Rescale, Coverage, ProfileStep, Workers })
            command.Add(o);
    }

    /// <summary>The run settings from the options, every value parsed and checked here (before any work).</summary>
    public TrainConfig Config(ParseResult r)
    {
        var (kind, randomOffset) = ParseMask(r.GetValue(Mask));
        var model = r.GetValue(Model)!;
        if (!ModelFactory.Names.Contains(model))
            throw new ArgumentException($"--model '{model}' is not a model; use one of {string.Join(", ", ModelFactory.Names)}.");
        return new()
        {
            Model = model,
            MaskKind = kind,
            MaskRandomOffset = randomOffset,
            MaskScope = ParseMaskScope(r.GetValue(MaskPer)!),
            Epochs = r.GetValue(Epochs),
            BatchSize = r.GetValue(Batch),
            LearningRate = r.GetValue(Lr),
            WeightDecay = r.GetValue(WeightDecay),
            Seed = r.GetValue(Seed),
            MaxStepsPerEpoch = r.GetValue(Steps),
            SbpCaching = ParseCaching(r.GetValue(Caching)!),
            Rescale = r.GetValue(Rescale),
            ProfileStep = r.GetValue(ProfileStep),
            Coverage = r.GetValue(Coverage) switch
            {
                "model" => SbpCoverage.Model,
                "all" => SbpCoverage.AllBlocks,
                var other => throw new ArgumentException($"--sbp-blocks '{other}' is not model or all."),
            },
            Workers = r.GetValue(Workers),
        };
    }

    public DatasetSpec Spec(ParseResult r) => new()
    {
        Source = r.GetValue(Data)!,
        Frames = r.GetValue(Frames),
        Height = r.GetValue(Size),
        Width = r.GetValue(Size),
        Classes = r.GetValue(Classes),
        Seed = r.GetValue(Seed),
        TrainCount = r.GetValue(TrainCount),
        ValCount = r.GetValue(ValCount),
        Noise = r.GetValue(Noise),
        Speed = r.GetValue(Speed),
        ObjectSize = r.GetValue(ObjectSize),
    };

    /// <summary>--caching: sparse-cache or recompute.</summary>
    public static RegionMode ParseCaching(string s) => s switch
    {
        "sparse-cache" => RegionMode.SparseCache,
        "recompute" => RegionMode.Recompute,
        var other => throw new ArgumentException($"--caching: '{other}' is not sparse-cache or recompute."),
    };

    /// <summary>--mask: the kind and whether a strided mask's offset is drawn per step; null: the model's default.</summary>
    public static (MaskKind? Kind, bool RandomOffset) ParseMask(string? s) => s?.Trim().ToLowerInvariant() switch
    {
        null => (null, false),
        "strided" => (MaskKind.Strided, false),
        "strided-random" => (MaskKind.Strided, true),
        "grid" => (MaskKind.Grid, false),
        "random" => (MaskKind.Random, false),
        _ => throw new ArgumentException($"--mask '{s}' is not a mask kind; use strided, strided-random, grid or random."),
    };

    /// <summary>--mask-per: layer, step or model.</summary>
    public static MaskScope ParseMaskScope(string s) => s.Trim().ToLowerInvariant() switch
    {
        "layer" => MaskScope.Layer,
        "step" => MaskScope.Step,
        "model" => MaskScope.Model,
        _ => throw new ArgumentException($"--mask-per '{s}' is not layer, step or model."),
    };

    /// <summary>The device the global --device option names (auto: CUDA when usable, else the CPU, said once).</summary>
    public static Device ResolveDevice(ParseResult r)
    {
        var device = Device.Resolve(r.GetValue(GlobalOptions.Device) ?? "auto", out var note);
        if (note is not null) Console.Error.WriteLine(note);
        return device;
    }

    /// <summary>A keep ratio (see <see cref="ModeSpec.ParseKeep"/>).</summary>
    public static double ParseKeep(string s, string option = "--keep") => ModeSpec.ParseKeep(s, option);
}
