namespace Sbp.Stochastic;

/// <summary>What an SBP region keeps for backward (docs/SBP.md section 3).</summary>
public enum RegionMode
{
    /// <summary>Every saved activation is gathered to kept positions; backward runs on compact tensors, no recompute.</summary>
    SparseCache,
    /// <summary>Only the region input (at kept positions when the region is position-wise) and random masks are saved; the region is re-run in backward.</summary>
    Recompute,
    /// <summary>Gradient checkpointing: the region input is saved in full and the region re-run in backward (with a mask: SBP + checkpointing).</summary>
    Checkpoint,
    /// <summary>The test oracle: ordinary backprop of the region with a GradMask at its output (no memory saving).</summary>
    Oracle,
}

/// <summary>
/// Per-region options: caching mode and the optional 1/keep gradient rescale.
/// <para><see cref="EagerCompaction"/> (sparse cache): gather each op's saved tensors to the kept
/// positions as soon as the op runs, so the body never holds full-size copies for backward; ops whose
/// gradient turns out dense (attention's keys and values) are remembered per region, name and input
/// shape, and the body is run once more the first time a guess fails (bodies must be pure, as for
/// recompute). Off: everything is recorded in full and compacted when the body returns.</para>
/// </summary>
public sealed record RegionOptions(RegionMode Mode = RegionMode.SparseCache, bool Rescale = false, bool EagerCompaction = true)
{
    public static RegionOptions Default { get; } = new();
}
