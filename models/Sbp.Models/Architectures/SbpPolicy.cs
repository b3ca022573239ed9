using Sbp.Stochastic;

namespace Sbp.Models.Architectures;

/// <summary>Where a model puts its SBP regions (docs/SBP.md section 1).</summary>
public enum SbpPlacement
{
    /// <summary>The mask sits on the block output, residual stream included (CVPR Video Swin).</summary>
    BlockOutput,
    /// <summary>The mask sits on each residual branch before the add; the skip path keeps the full gradient (NeurIPS ViT).</summary>
    BranchOutput,
}

/// <summary>Which of a model's blocks are SBP regions.</summary>
public enum SbpCoverage
{
    /// <summary>The model's own choice, following its paper (Video Swin: stages 1-3 except the last two blocks of stage 3, as the official code).</summary>
    Model,
    /// <summary>Every block the model can make a region: the most memory and time saved, the most gradient dropped.</summary>
    AllBlocks,
}

/// <summary>
/// A model's SBP configuration: how masks are drawn, where regions sit, how they cache, which
/// blocks they cover. Models take one (or null for plain backprop) and ask <see cref="Masks"/> for
/// each block's mask per step.
/// </summary>
public sealed record SbpPolicy(KeepMaskPolicy MaskPolicy, SbpPlacement Placement = SbpPlacement.BlockOutput, RegionMode Mode = RegionMode.SparseCache, bool Rescale = false,
    SbpCoverage Coverage = SbpCoverage.Model)
{
    /// <summary>The mask generator for <see cref="MaskPolicy"/>.</summary>
    public KeepMaskGenerator Masks { get; } = new(MaskPolicy);

    /// <summary>The region options this policy gives every region.</summary>
    public RegionOptions Options => new(Mode, Rescale);

    public double KeepRatio => MaskPolicy.KeepRatio;

    /// <summary>Whether a block is a region: every block with <see cref="SbpCoverage.AllBlocks"/>, else the model's choice.</summary>
    public bool Covers(bool modelChoice) => Coverage == SbpCoverage.AllBlocks || modelChoice;
}
