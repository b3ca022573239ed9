using System.CommandLine;
using System.Globalization;
using Sbp.Models.Architectures;
using Sbp.Models.Data;
using Sbp.Models.Training;
using Sbp.Stochastic;
using Sbp.Tensors;

namespace Sbp.Cli;

/// <summary>
/// The options train, eval and compare share, in two groups: the model and its data (every command),
/// and training with its SBP settings (train and compare). Each value is parsed and checked here, once.
/// </summary>
public sealed class TrainOptions
{
    static readonly TrainConfig Defaults = new();
    readonly HashSet<string> _reported = [];

    public readonly Option<string> Model = new("--model") { Description = $"model config: {string.Join(", ", ModelFactory.Names)}", DefaultValueFactory = _ => Defaults.Model };
    public readonly Option<string> Data = new("--data") { Description = "dataset: synthetic-actions, synthetic-detection, a folder from `sbp datasets make`, a list file or an annotation file", DefaultValueFactory = _ => DatasetCatalog.Actions };
    public readonly Option<int?> Frames = new("--frames") { Description = "frames per clip" };
    public readonly Option<int?> Size = new("--size") { Description = "model input height and width (default: synthetic data 32, video files 112)" };
    public readonly Option<int?> Classes = new("--classes") { Description = "number of classes" };
    public readonly Option<int?> TrainCount = new("--train-count") { Description = "synthetic data: training samples" };
    public readonly Option<int?> ValCount = new("--val-count") { Description = "synthetic data: held-out samples" };
    public readonly Option<float?> Noise = new("--noise") { Description = "synthetic data: per-pixel noise std in [0, 1] (harder when larger)" };
    public readonly Option<float?> Speed = new("--speed") { Description = "synthetic data: motion relative to the default 1 (harder when smaller)" };
    public readonly Option<float?> ObjectSize = new("--object-size") { Description = "synthetic data: object size as a fraction of the frame" };
    public readonly Option<int> Epochs = new("--epochs") { Description = "training epochs", DefaultValueFactory = _ => Defaults.Epochs };
    public readonly Option<int> Batch = new("--batch") { Description = "batch size", DefaultValueFactory = _ => Defaults.BatchSize };
    public readonly Option<float?> Lr = new("--lr") { Description = "peak learning rate (AdamW, warmup then cosine); default per model: 2e-3 convolutional, 1.5e-4 Video Swin, 2e-4 ViT" };
    public readonly Option<float> WeightDecay = new("--weight-decay") { Description = "AdamW weight decay (not on norms and biases)", DefaultValueFactory = _ => Defaults.WeightDecay };
    public readonly Option<float> LabelSmoothing = new("--label-smoothing") { Description = "label smoothing of the training loss in [0, 1): targets (1 - eps) one-hot + eps / classes", DefaultValueFactory = _ => Defaults.LabelSmoothing };
    public readonly Option<float?> DropPath = new("--drop-path") { Description = "stochastic depth of Video Swin and the ViTs: the deepest block's drop rate, rising linearly from 0 over the blocks (default: the model's, e.g. 0.1 for swin-t and swin-micro)" };
    public readonly Option<ulong> Seed = new("--seed") { Description = "seed of weights, masks, data order and synthetic data", DefaultValueFactory = _ => Defaults.Seed };
    public readonly Option<int?> Steps = new("--steps") { Description = "stop each epoch after this many steps" };
    public readonly Option<string?> Mask = new("--mask") { Description = "SBP mask: strided (fixed centred stride, the official CVPR code), strided-random (offset drawn per step), grid (tokens) or random (the paper's wording); default: the model's (strided over frames, grid over ViT tokens)" };
    public readonly Option<string> MaskPer = new("--mask-per") { Description = "draw a new SBP mask per layer (independent masks compose: an early layer's input gradient survives only where every later mask kept the position), per step (all layers share it) or per model (one mask for the whole run)", DefaultValueFactory = _ => "step" };
    public readonly Option<string> Caching = new("--caching") { Description = "SBP caching: sparse-cache or recompute", DefaultValueFactory = _ => "sparse-cache" };
    public readonly Option<bool> Rescale = new("--rescale") { Description = "scale SBP gradients by 1/keep" };
    public readonly Option<string> SaveActivations = SaveActivationsOption();
    public readonly Option<string> Precision = new("--precision")
    {
        Description = "autocast the forward pass and loss (evaluation too): fp32 (off), bf16 (matmul, linear, convolution, attention on bf16 inputs with fp32 accumulation), " +
            "or fp16 (the same, with dynamic loss scaling); compare --modes entries may lead with their own, as bf16/sbp:0.5",
        DefaultValueFactory = _ => "fp32",
    };
    public readonly Option<long?> ProfileStep = new("--profile-step") { Description = "time every op of this step (0-based) and print the table: forward and backward, per op, in SBP regions or not" };
    public readonly Option<string> Coverage = new("--sbp-blocks") { Description = "which blocks are SBP regions: model (the paper's choice) or all", DefaultValueFactory = _ => "model" };
    public readonly Option<string> Device = DeviceOption();
    public readonly Option<bool> Tf32 = Tf32Option();
    public readonly Option<bool> Strict = new("--strict") { Description = "list and annotation files: stop at the first bad line instead of skipping it (skipped lines are printed)" };
    public readonly Option<int> Workers = new("--workers") { Description = "data loading threads", DefaultValueFactory = _ => Defaults.Workers };
    public readonly Option<string?> Init = new("--init") { Description = "start from pretrained weights: a PyTorch checkpoint (.pth, no code in it is run) or safetensors, under our names or the official ones of the model's family (docs/MODELS.md section 0)" };
    public readonly Option<string?> InitFormat = new("--init-format") { Description = "pth or safetensors (default: from the --init file's extension)" };
    public readonly Option<bool> ResetHead = new("--reset-head") { Description = "with --init: keep the classifier freshly initialized (for a dataset with other classes)" };
    public readonly Option<bool> MasksPerRank = new("--masks-per-rank") { Description = "data parallel: each rank draws its own SBP masks (the rank in the seed); default: the same masks on every rank" };
    public readonly InputOptions Input = new();
    public readonly DistOptions Dist = new();

    /// <summary>The model and data options (every command that builds a model).</summary>
    Option[] DataOptions => [Model, Data, Frames, Size, .. Input.All, Classes, ValCount, Noise, Speed, ObjectSize, Strict, Batch, Seed, Workers, Device, Tf32];

    /// <summary>The training and SBP options (train and compare).</summary>
    Option[] TrainingOptions => [TrainCount, Epochs, Lr, WeightDecay, LabelSmoothing, DropPath, Steps, Mask, MaskPer, Caching, Rescale, SaveActivations, Precision, Coverage, ProfileStep, Init, InitFormat, ResetHead, MasksPerRank, .. Dist.All];

    /// <summary>Adds the model and data options, and with <paramref name="training"/> the training and SBP options.</summary>
    public void AddTo(Command command, bool training = true)
    {
        foreach (var o in training ? [.. DataOptions, .. TrainingOptions] : DataOptions) command.Add(o);
    }

    /// <summary>
    /// Joins the ranks (`--dist`; one process alone by default), opens the training and held-out data, and runs
    /// <paramref name="body"/>(ranks, device, train, val) under <see cref="DistOptions.Guard"/>: train's and compare's common start.
    /// </summary>
    public int RunRanks(ParseResult r, DatasetSpec spec, int batch, string command, Func<Distributed.Communicator, Device, IVideoDataset, IVideoDataset, int> body) =>
        RunRanks(r, command, (comm, device) => body(comm, device, Open(r, spec, DataSplit.Train, batch), Open(r, spec, DataSplit.Validation, batch)));

    /// <summary>Joins the ranks and runs <paramref name="body"/>(ranks, device) under <see cref="DistOptions.Guard"/>; the body opens its data (compare --seeds: once per seed).</summary>
    public int RunRanks(ParseResult r, string command, Func<Distributed.Communicator, Device, int> body)
    {
        var engine = Dist.Engine(r);
        using var session = Dist.Open(r, engine, ResolveDevice(r));
        return DistOptions.Guard(session.Comm, command, () => body(session.Comm, session.Device));
    }

    /// <summary>The model name (checked against the known configs).</summary>
    public string ModelName(ParseResult r)
    {
        var model = r.GetValue(Model)!;
        return ModelFactory.Names.Contains(model) ? model
            : throw new ArgumentException($"--model '{model}' is not a model; use one of {string.Join(", ", ModelFactory.Names)}.");
    }

    /// <summary>The model and data settings alone (eval): model, batch, seed, workers.</summary>
    public TrainConfig EvalConfig(ParseResult r)
    {
        Require(r, Batch, v => v >= 1, "at least 1");
        Require(r, Workers, v => v >= 1, "at least 1");
        return new() { Model = ModelName(r), BatchSize = r.GetValue(Batch), Seed = r.GetValue(Seed), Workers = r.GetValue(Workers) };
    }

    /// <summary>The run settings from the options, every value parsed and checked here (before any work).</summary>
    public TrainConfig Config(ParseResult r)
    {
        Require(r, Epochs, v => v >= 1, "at least 1");
        Require(r, Lr, v => v is null or (> 0 and < float.PositiveInfinity), "a number above 0");
        Require(r, WeightDecay, v => v >= 0 && float.IsFinite(v), "0 or more");
        Require(r, LabelSmoothing, v => v is >= 0 and < 1, "in [0, 1)");
        Require(r, DropPath, v => v is null or (>= 0 and < 1), "in [0, 1)");
        Require(r, Steps, v => v is null or >= 1, "at least 1");
        Require(r, ProfileStep, v => v is null or >= 0, "a step number, 0 or more");
        var (kind, randomOffset) = ParseMask(r.GetValue(Mask));
        var (init, initFormat) = ParseInit(r);
        return EvalConfig(r) with
        {
            InitPath = init,
            InitFormat = initFormat,
            ResetHead = r.GetValue(ResetHead),
            MasksPerRank = r.GetValue(MasksPerRank),
            MaskKind = kind,
            MaskRandomOffset = randomOffset,
            MaskScope = ParseMaskScope(r.GetValue(MaskPer)!),
            Epochs = r.GetValue(Epochs),
            LearningRate = r.GetValue(Lr),
            WeightDecay = r.GetValue(WeightDecay),
            LabelSmoothing = r.GetValue(LabelSmoothing),
            DropPath = r.GetValue(DropPath),
            MaxStepsPerEpoch = r.GetValue(Steps),
            SbpCaching = ParseCaching(r.GetValue(Caching)!),
            Rescale = r.GetValue(Rescale),
            SaveActivationsAs = ParseSaveActivations(r.GetValue(SaveActivations)!),
            Precision = ModeSpec.ParsePrecision(r.GetValue(Precision)!, "--precision"),
            ProfileStep = r.GetValue(ProfileStep),
            Coverage = r.GetValue(Coverage) switch
            {
                "model" => SbpCoverage.Model,
                "all" => SbpCoverage.AllBlocks,
                var other => throw new ArgumentException($"--sbp-blocks '{other}' is not model or all."),
            },
        };
    }

    /// <summary>--init's file and format, checked before any work (the file exists; the format is known).</summary>
    (string? Path, string? Format) ParseInit(ParseResult r)
    {
        string? path = r.GetValue(Init), format = r.GetValue(InitFormat);
        if (path is null)
        {
            if (r.GetValue(ResetHead) || format is not null) throw new ArgumentException($"{(format is null ? "--reset-head" : "--init-format")} goes with --init PATH (pretrained weights).");
            return (null, null);
        }
        return (path, Models.Pretrained.PretrainedInit.FormatOf(path, format));
    }

    /// <summary>The dataset settings from the options (ranges checked here; a dataset's own limits when it opens, see <see cref="Open"/>).</summary>
    public DatasetSpec Spec(ParseResult r)
    {
        Require(r, Frames, v => v is null or >= 1, "at least 1");
        Require(r, Size, v => v is null or >= 1, "at least 1");
        Require(r, Classes, v => v is null or >= 1, "at least 1");
        Require(r, TrainCount, v => v is null or >= 1, "at least 1");
        Require(r, ValCount, v => v is null or >= 1, "at least 1");
        Require(r, Noise, v => v is null or (>= 0 and <= 1), "in [0, 1]");
        Require(r, Speed, v => v is null or (> 0 and <= 3), "in (0, 3]");
        Require(r, ObjectSize, v => v is null or (> 0.05f and <= 0.6f), "in (0.05, 0.6]");
        var source = r.GetValue(Data)!;
        if (!DatasetCatalog.BuiltIn.Any(b => string.Equals(b.Name, source, StringComparison.OrdinalIgnoreCase)) && !Directory.Exists(source) && !File.Exists(source))
            throw new ArgumentException($"--data '{source}' is neither a built-in dataset ({string.Join(", ", DatasetCatalog.BuiltIn.Select(b => b.Name))}), " +
                "a folder written by `sbp datasets make`, nor a list or annotation file.");
        return Input.Apply(r, SpecOf(r));
    }

    DatasetSpec SpecOf(ParseResult r) => new()
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
        BadLines = r.GetValue(Strict) ? BadLinePolicy.Fail : BadLinePolicy.Skip,
    };

    /// <summary>Throws when <paramref name="option"/>'s value fails <paramref name="ok"/>, naming the option, the value and what it must be.</summary>
    static void Require<T>(ParseResult r, Option<T> option, Func<T, bool> ok, string must)
    {
        var v = r.GetValue(option);
        if (!ok(v!)) throw new ArgumentException($"{option.Name} {Convert.ToString(v, CultureInfo.InvariantCulture)}: must be {must}.");
    }

    /// <summary>
    /// Opens a split of the dataset, with a dataset's own limits (a synthetic clip's minimum length, its class
    /// count) reported under the option that sets them, and the training split checked against the batch size.
    /// </summary>
    public IVideoDataset Open(ParseResult r, DatasetSpec spec, DataSplit split, int batch)
    {
        IVideoDataset data;
        try { data = DatasetCatalog.Open(spec, split); }
        catch (DataOptionException e)
        {
            string option = e.Field switch
            {
                DataField.Count => split == DataSplit.Train ? TrainCount.Name : ValCount.Name,
                DataField.Frames => Frames.Name,
                DataField.Size => Size.Name,
                DataField.Classes => Classes.Name,
                DataField.Noise => Noise.Name,
                DataField.Speed => Speed.Name,
                DataField.ObjectSize => ObjectSize.Name,
                _ => Input.NameOf(e.Field) ?? Data.Name,
            };
            throw new ArgumentException($"{option}: {e.Message}.");
        }
        // A list file serves both splits: its bad lines are printed once.
        if (DatasetCatalog.BadLines(data) is [var first, ..] && _reported.Add(first.File))
            foreach (var line in DatasetCatalog.BadLineReport(data)) r.InvocationConfiguration.Error.WriteLine(line);
        if (VideoLoader.BatchTooLarge(batch, data) is { } tooLarge)
            throw new ArgumentException($"{Batch.Name} {batch}, {Frames.Name} {data.ClipFrames}, {Size.Name} {data.Transform.Height}: {tooLarge}; lower one of them.");
        if (split == DataSplit.Train && data.Count < batch)
            throw new ArgumentException($"{Batch.Name} {batch}: the training split of {spec.Source} has {data.Count} clips, fewer than one batch; lower {Batch.Name} or give more data ({TrainCount.Name} for synthetic data).");
        return data;
    }

    /// <summary>--save-activations: the type saved activations are held in for backward.</summary>
    public static Option<string> SaveActivationsOption() => new("--save-activations")
    {
        Description = "hold the activations saved for backward as fp32, bf16 or fp16 (half the bytes; forward stays fp32, backward reads the rounded values; batch norm and losses keep fp32)",
        DefaultValueFactory = _ => "fp32",
    };

    /// <summary>--save-activations: null for fp32, else the 16-bit type.</summary>
    public static DType? ParseSaveActivations(string s) => ModeSpec.ParsePrecision(s, "--save-activations") is var p && p == DType.Float32 ? null : p;

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

    /// <summary>--device, for the commands that compute: cpu, cuda, cuda:N or auto (checked when the command line is parsed).</summary>
    public static Option<string> DeviceOption()
    {
        var option = new Option<string>("--device")
        {
            Description = "compute device: cpu, cuda (the first GPU), cuda:N or auto (a GPU when there is one, else the CPU)",
            DefaultValueFactory = _ => "auto",
        };
        option.Validators.Add(r =>
        {
            var v = r.GetValueOrDefault<string>()?.Trim().ToLowerInvariant() ?? "";
            bool ok = v is "cpu" or "cuda" or "auto" || (v.StartsWith("cuda:", StringComparison.Ordinal) && int.TryParse(v.AsSpan(5), out int n) && n >= 0);
            if (!ok) r.AddError($"--device '{v}' is not a device; use cpu, cuda, cuda:N (N = 0, 1, ...) or auto.");
        });
        return option;
    }

    /// <summary>--tf32: TF32 tensor cores for float32 GEMMs and convolutions on a GPU (<see cref="Tensors.Device.AllowTf32"/>).</summary>
    public static Option<bool> Tf32Option() => new("--tf32")
    {
        Description = "GPU: let cuBLAS and cuDNN use TF32 tensor cores for float32 GEMMs and convolutions (faster; products keep a 10-bit mantissa); off by default, as PyTorch; no effect on the CPU",
    };

    /// <summary>The device --device names (auto: CUDA when usable, else the CPU, said once on one line), with --tf32 applied.</summary>
    public Device ResolveDevice(ParseResult r)
    {
        var device = ResolveDevice(r, Device);
        device.AllowTf32 = r.GetValue(Tf32);
        return device;
    }

    public static Device ResolveDevice(ParseResult r, Option<string> option)
    {
        var device = Tensors.Device.Resolve(r.GetValue(option) ?? "auto", out var note);
        // Under mpirun every rank resolves its device; rank 0 alone says so.
        if (note is not null && Distributed.MpiCommunicator.LaunchRank == 0) r.InvocationConfiguration.Error.WriteLine(note);
        return device;
    }

    /// <summary>A keep ratio (see <see cref="ModeSpec.ParseKeep"/>).</summary>
    public static double ParseKeep(string s, string option = "--keep") => ModeSpec.ParseKeep(s, option);
}
