using Sbp.Models.Architectures;
using Sbp.Models.Training;
using Sbp.Stochastic;

namespace Sbp.Benchmarks.Training;

/// <summary>
/// How a training step backpropagates: full backprop, gradient checkpointing, SBP at a keep ratio
/// with sparse caching or recompute, or SBP + checkpointing. The policy comes from
/// <see cref="Trainer.PolicyFor"/>, so benchmarks run exactly what `sbp train` runs.
/// </summary>
public sealed record StepMode(string Name, TrainMode Mode, double Keep, RegionMode Caching = RegionMode.SparseCache, SbpCoverage Coverage = SbpCoverage.Model)
{
    /// <summary>The autocast type of the forward pass and loss (Float32: none); a mode name led by bf16- or fp16- (bf16-sbp-0.5).</summary>
    public global::Sbp.Tensors.DType Precision { get; init; } = global::Sbp.Tensors.DType.Float32;

    /// <summary>Saved activations held in this 16-bit type (Tape.SaveActivationsAs); a mode name led by save-bf16- or save-fp16- (save-bf16-full).</summary>
    public global::Sbp.Tensors.DType? SaveAs { get; init; }

    /// <summary>forward() (the forward pass and the loss) under this mode's saved-activation type and autocast precision.</summary>
    public global::Sbp.Tensors.Tensor Forward(Func<global::Sbp.Tensors.Tensor> forward)
    {
        using (SaveAs is { } packed ? global::Sbp.Autograd.Tape.SaveActivationsAs(packed) : default)
        using (global::Sbp.Autograd.Autocast.Begin(Precision))
            return forward();
    }

    public static StepMode Full { get; } = new("full", TrainMode.Full, 1);
    public static StepMode Checkpoint { get; } = new("checkpoint", TrainMode.Checkpoint, 1, RegionMode.Checkpoint);

    /// <summary>SBP with sparse caching ("sbp-0.5") or recompute ("sbp-rc-0.5").</summary>
    public static StepMode Sbp(double keep, RegionMode caching = RegionMode.SparseCache) =>
        new(caching == RegionMode.Recompute ? Qualified("rc", keep) : new ModeSpec(TrainMode.Sbp, keep).Label, TrainMode.Sbp, keep, caching);

    /// <summary>SBP on every block the model can make a region ("sbp-all-0.5"), not only the paper's choice.</summary>
    public static StepMode SbpAll(double keep) => new(Qualified("all", keep), TrainMode.Sbp, keep, RegionMode.SparseCache, SbpCoverage.AllBlocks);

    /// <summary>SBP + checkpointing ("sbp+checkpoint-0.25"): the region input saved in full, the region re-run with the mask in backward.</summary>
    public static StepMode SbpCheckpoint(double keep) => new(new ModeSpec(TrainMode.Checkpoint, keep).Label, TrainMode.Checkpoint, keep, RegionMode.Checkpoint);

    /// <summary>
    /// A benchmark mode by name: the modes of `sbp compare` (<see cref="ModeSpec"/>: full, checkpoint, sbp-0.5 or sbp:0.5,
    /// sbp+checkpoint-0.25), each optionally led by a precision (bf16-full, fp16/sbp:0.5) or a saved-activation type (save-bf16-full), and two SBP variants of the benchmarks, recompute caching (sbp-rc-K) and every block a region (sbp-all-K).
    /// </summary>
    public static StepMode Parse(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (name.StartsWith("save-", StringComparison.OrdinalIgnoreCase) && ModeSpec.SplitPrecision(name[5..], $"mode '{name}'") is ({ } saveAs, var saved)
            && saveAs != global::Sbp.Tensors.DType.Float32)
        {
            var inner = Parse(saved);
            return inner with { Name = $"save-{ModeSpec.PrecisionName(saveAs)}-{inner.Name}", SaveAs = saveAs };
        }
        if (ModeSpec.SplitPrecision(name, $"mode '{name}'") is ({ } precision, var rest))
        {
            var inner = Parse(rest);
            return inner with { Name = precision == global::Sbp.Tensors.DType.Float32 ? inner.Name : $"{ModeSpec.PrecisionName(precision)}-{inner.Name}", Precision = precision };
        }
        foreach (var (qualifier, make) in new (string, Func<double, StepMode>)[] { ("rc", k => Sbp(k, RegionMode.Recompute)), ("all", SbpAll) })
            if (name.StartsWith($"sbp-{qualifier}-", StringComparison.OrdinalIgnoreCase))
                return make(ModeSpec.ParseKeep(name[(qualifier.Length + 5)..], $"mode '{name}'"));
        var spec = ModeSpec.Parse(name, "mode");
        return spec.Mode switch
        {
            TrainMode.Full => Full,
            TrainMode.Checkpoint when spec.Keep >= 1 => Checkpoint,
            TrainMode.Checkpoint => SbpCheckpoint(spec.Keep),
            _ => Sbp(spec.Keep),
        };
    }

    static string Qualified(string qualifier, double keep) => $"sbp-{qualifier}-{new ModeSpec(TrainMode.Sbp, keep).Label[4..]}";

    /// <summary>The mode list of the suite: full, checkpoint, SBP 1/2, 1/4, 1/8 (sparse-cache and recompute), SBP 1/4 + checkpoint.</summary>
    public static IReadOnlyList<StepMode> All { get; } =
    [
        Full, Checkpoint,
        Sbp(0.5), Sbp(0.25), Sbp(0.125),
        Sbp(0.5, RegionMode.Recompute), Sbp(0.25, RegionMode.Recompute), Sbp(0.125, RegionMode.Recompute),
        SbpCheckpoint(0.25),
    ];

    /// <summary>The SBP policy for <paramref name="model"/> (null for full backprop).</summary>
    public SbpPolicy? PolicyFor(VideoModel model, ulong seed) =>
        Trainer.PolicyFor(new TrainConfig { Mode = Mode, Keep = Keep, SbpCaching = Caching, Seed = seed, Coverage = Coverage }, model);

    /// <summary>
    /// Whether the tape holds all of the step's work: recompute and checkpoint regions run their bodies untaped (and
    /// again in backward), so <see cref="Autograd.FlopCounter"/> cannot count them and no ideal ratio is given.
    /// </summary>
    public bool RegionsTaped => Caching == RegionMode.SparseCache;

    public override string ToString() => Name;
}
