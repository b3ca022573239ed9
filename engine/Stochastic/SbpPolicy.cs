namespace Sbp.Stochastic;

/// <summary>
/// A model's SBP configuration: how masks are drawn, where regions sit, how they cache. Models take
/// one (or null for plain backprop) and ask <see cref="Masks"/> for each block's mask per step.
/// </summary>
public sealed record SbpPolicy(KeepMaskPolicy MaskPolicy, SbpPlacement Placement = SbpPlacement.BlockOutput, RegionMode Mode = RegionMode.SparseCache, bool Rescale = false)
{
    /// <summary>The mask generator for <see cref="MaskPolicy"/>.</summary>
    public KeepMaskGenerator Masks { get; } = new(MaskPolicy);

    /// <summary>The region options this policy gives every region.</summary>
    public RegionOptions Options => new(Mode, Rescale);

    public double KeepRatio => MaskPolicy.KeepRatio;
}
