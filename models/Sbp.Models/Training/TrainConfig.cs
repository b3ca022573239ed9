using Sbp.Models.Architectures;
using Sbp.Stochastic;

namespace Sbp.Models.Training;

/// <summary>How a run trains: full backprop, gradient checkpointing, or SBP at a keep ratio.</summary>
public enum TrainMode { Full, Checkpoint, Sbp }

/// <summary>
/// One training run: model config, data, schedule and the backprop mode. Defaults are the main
/// job's (`sbp compare`): the (2+1)-D network r21d-micro on the synthetic action dataset, 10 epochs,
/// about 2 minutes per mode on a 2-core CPU.
/// </summary>
public sealed record TrainConfig
{
    public string Model { get; init; } = "r21d-micro";
    public int Epochs { get; init; } = 10;
    public int BatchSize { get; init; } = 16;
    /// <summary>Peak learning rate; null: the model's (<see cref="Architectures.ModelFactory.DefaultLearningRate"/>), see <see cref="PeakLearningRate"/>.</summary>
    public float? LearningRate { get; init; }
    /// <summary>The peak learning rate the run uses: <see cref="LearningRate"/> or the model's default.</summary>
    public float PeakLearningRate => LearningRate ?? Architectures.ModelFactory.DefaultLearningRate(Model);
    public float WeightDecay { get; init; } = 0.05f;
    /// <summary>Label smoothing of the training loss (eps in [0, 1): the target is (1 - eps) one-hot + eps / K); 0: plain cross-entropy.</summary>
    public float LabelSmoothing { get; init; }
    /// <summary>Stochastic depth of the transformers' deepest block (rates rise linearly from 0, as timm's); null: the model config's.</summary>
    public float? DropPath { get; init; }
    public int WarmupSteps { get; init; } = 20;
    public ulong Seed { get; init; } = 1;
    public TrainMode Mode { get; init; } = TrainMode.Full;
    /// <summary>SBP keep ratio (Mode = Sbp); with Checkpoint, a value below 1 means SBP + checkpointing.</summary>
    public double Keep { get; init; } = 0.5;
    /// <summary>SBP mask kind; null takes the model's default (strided over frames, grid over tokens).</summary>
    public MaskKind? MaskKind { get; init; }
    /// <summary>Strided masks: draw the offset each step (`--mask strided-random`) instead of the official code's fixed centre.</summary>
    public bool MaskRandomOffset { get; init; }
    /// <summary>How widely one drawn mask is shared: per layer, per step (the default) or per run (`--mask-per`).</summary>
    public MaskScope MaskScope { get; init; } = MaskScope.Step;
    /// <summary>SBP caching mode for Mode = Sbp.</summary>
    public RegionMode SbpCaching { get; init; } = RegionMode.SparseCache;
    /// <summary>Scale gradients in SBP regions by 1/keep.</summary>
    public bool Rescale { get; init; }
    /// <summary>Hold saved activations as BFloat16 or Float16 (Tape.SaveActivationsAs; half the bytes); null: Float32.</summary>
    public Sbp.Tensors.DType? SaveActivationsAs { get; init; }
    /// <summary>
    /// The forward pass and loss run under autocast in this type (Sbp.Autograd.Autocast): BFloat16, or Float16 with dynamic
    /// loss scaling (GradScaler); Float32: no autocast. Evaluation runs in it too.
    /// </summary>
    public Sbp.Tensors.DType Precision { get; init; } = Sbp.Tensors.DType.Float32;
    /// <summary>Time every op of this step (0-based global step) and log the table (Tape.Profile); null: no profiling.</summary>
    public long? ProfileStep { get; init; }
    /// <summary>Which blocks are SBP regions: the model's (paper's) choice or every block.</summary>
    public SbpCoverage Coverage { get; init; } = SbpCoverage.Model;
    /// <summary>Stop an epoch after this many steps (null: the whole epoch).</summary>
    public int? MaxStepsPerEpoch { get; init; }
    /// <summary>Folder for metrics.jsonl and checkpoints (null: none written).</summary>
    public string? OutputDir { get; init; }
    /// <summary>Continue from OutputDir/checkpoint.safetensors when it exists.</summary>
    public bool Resume { get; init; }
    /// <summary>Pretrained weights to start from (<see cref="Pretrained.PretrainedInit"/>): a .pth or safetensors file; null: random init.</summary>
    public string? InitPath { get; init; }
    /// <summary>"pth" or "safetensors" (null: from the extension).</summary>
    public string? InitFormat { get; init; }
    /// <summary>With <see cref="InitPath"/>: keep the classifier freshly initialized.</summary>
    public bool ResetHead { get; init; }
    public int Workers { get; init; } = 2;
    /// <summary>Also checkpoint every this many steps (null: at the end of each epoch only); resuming mid-epoch is bit-exact.</summary>
    public int? CheckpointEvery { get; init; }
    /// <summary>Stop after this many steps in total (a checkpoint is written; --resume continues).</summary>
    public long? MaxSteps { get; init; }
    /// <summary>Split each batch into this many micro-batches (gradient accumulation; same update up to rounding).</summary>
    public int MicroBatches { get; init; } = 1;
    /// <summary>On device out-of-memory, free the step and retry it with twice the micro-batches (up to one sample each).</summary>
    public bool OomRetry { get; init; }
    /// <summary>Data parallelism: each rank draws its own SBP masks (the rank in the seed); default: the same masks on every rank.</summary>
    public bool MasksPerRank { get; init; }

    /// <summary>The SBP masks a run draws, for logs and results: kind, offset and how widely one is shared (docs/SBP.md section 2).</summary>
    public string MaskDescription
    {
        get
        {
            if (Mode == TrainMode.Full || Keep >= 1) return "none";
            var kind = MaskKind ?? Trainer.DefaultMaskKind(Model, Keep);
            string name = kind switch
            {
                Stochastic.MaskKind.Strided => MaskRandomOffset ? "strided-random" : "strided",
                _ => kind.ToString().ToLowerInvariant(),
            };
            return $"{name}{(MaskKind is null ? " (the model's default)" : "")}, one per {MaskScope.ToString().ToLowerInvariant()}";
        }
    }

    /// <summary>The mode and keep ratio as one value (<see cref="ModeSpec"/>).</summary>
    public ModeSpec Spec => new(Mode, Keep, Precision);

    /// <summary>A short name for tables and files: full, checkpoint, sbp-0.5, sbp+checkpoint-0.25 (bf16-sbp-0.5 under autocast).</summary>
    public string Label => Spec.Label;

    public string ModeName => Spec.Name;

    /// <summary>Checks every setting; a bad one is an <see cref="ArgumentException"/> naming the `sbp` option that sets it.</summary>
    public void Validate()
    {
        static void Check(bool ok, string message)
        {
            if (!ok) throw new ArgumentException(message);
        }
        Check(Epochs >= 1, $"--epochs {Epochs}: must be at least 1.");
        Check(BatchSize >= 1, $"--batch {BatchSize}: must be at least 1.");
        Check(PeakLearningRate > 0 && float.IsFinite(PeakLearningRate), $"--lr {LearningRate}: must be a number above 0.");
        Check(Keep is > 0 and <= 1, $"--keep {Keep}: must be in (0, 1].");
        Check(LabelSmoothing is >= 0 and < 1, $"--label-smoothing {LabelSmoothing}: must be in [0, 1).");
        Check(Precision is Sbp.Tensors.DType.Float32 or Sbp.Tensors.DType.BFloat16 or Sbp.Tensors.DType.Float16, $"--precision {Precision}: must be fp32, bf16 or fp16.");
        Check(DropPath is null or (>= 0 and < 1), $"--drop-path {DropPath}: must be in [0, 1).");
        if (DropPath is not null && !Architectures.ModelFactory.HasDropPath(Model))
            throw new ArgumentException($"--drop-path {DropPath}: {Model} has no stochastic depth (Video Swin and the ViTs have it); leave --drop-path out.");
        Check(MaxStepsPerEpoch is null or >= 1, $"--steps {MaxStepsPerEpoch}: must be at least 1.");
        Check(CheckpointEvery is null or >= 1, $"--checkpoint-every {CheckpointEvery}: must be at least 1 step.");
        Check(MaxSteps is null or >= 1, $"--max-steps {MaxSteps}: must be at least 1.");
        Check(MicroBatches >= 1 && MicroBatches <= BatchSize, $"--micro-batches {MicroBatches}: must be in 1..{BatchSize} (the batch size).");
        Check(Workers >= 1, $"--workers {Workers}: must be at least 1.");
        Check(!Resume || OutputDir is not null, "--resume needs --out, the folder holding checkpoint.safetensors.");
        if (Mode != TrainMode.Full && Keep < 1)
        {
            var kind = MaskKind ?? Trainer.DefaultMaskKind(Model, Keep);
            if (MasksPerRank && kind == Stochastic.MaskKind.Strided && !MaskRandomOffset)
                throw new ArgumentException($"--masks-per-rank: {Model}'s strided masks{(MaskKind is null ? " (its default)" : "")} have a fixed offset, the same on every rank whatever the seed; " +
                    "draw them with --mask strided-random or --mask random, or leave out --masks-per-rank.");
            if (!KeepMaskGenerator.Supports(kind, Keep))
                throw new ArgumentException($"{Label}: {kind.ToString().ToLowerInvariant()} masks{(MaskKind is null ? $" ({Model}'s default)" : "")} need a keep ratio of 1/s " +
                    $"(0.5, 0.25, 0.125, ...{(kind == Stochastic.MaskKind.Grid ? " or 1 - 1/s" : "")}); {Keep} is not. Use such a ratio, or random masks (--mask random).");
        }
    }
}
