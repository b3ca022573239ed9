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
    public static StepMode Full { get; } = new("full", TrainMode.Full, 1);
    public static StepMode Checkpoint { get; } = new("checkpoint", TrainMode.Checkpoint, 1, RegionMode.Checkpoint);

    /// <summary>SBP with sparse caching ("sbp-0.5") or recompute ("sbp-rc-0.5").</summary>
    public static StepMode Sbp(double keep, RegionMode caching = RegionMode.SparseCache) =>
        new($"sbp{(caching == RegionMode.Recompute ? "-rc" : "")}-{keep:0.###}", TrainMode.Sbp, keep, caching);

    /// <summary>SBP on every block the model can make a region ("sbp-all-0.5"), not only the paper's choice.</summary>
    public static StepMode SbpAll(double keep) => new($"sbp-all-{keep:0.###}", TrainMode.Sbp, keep, RegionMode.SparseCache, SbpCoverage.AllBlocks);

    /// <summary>SBP + checkpointing: the region input saved in full, the region re-run with the mask in backward.</summary>
    public static StepMode SbpCheckpoint(double keep) => new($"sbp-ckpt-{keep:0.###}", TrainMode.Checkpoint, keep, RegionMode.Checkpoint);

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

    public override string ToString() => Name;
}
