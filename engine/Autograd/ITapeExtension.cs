using Sbp.Tensors;

namespace Sbp.Autograd;

/// <summary>
/// What a feature that records through a tape keeps on it (SBP: index buffers, sealed compact tensors and
/// region reports), reached by the tape only through this. One per tape, made by the feature on first use.
/// </summary>
internal interface ITapeExtension
{
    /// <summary>Throws when <paramref name="op"/> may not take <paramref name="input"/> (a compact tensor of a closed SBP region).</summary>
    void CheckInput(string op, Tensor input);

    /// <summary>The compact form the gradient of <paramref name="t"/> itself comes in (a closed region's compact tensor), or null.</summary>
    ICompactForm? CompactFormOf(Tensor t);

    /// <summary>Frees what the extension holds for backward (the tape ran backward or was disposed).</summary>
    void Release();
}
