using Sbp.Memory;

namespace Sbp.Stochastic;

/// <summary>
/// What one SBP region holds for backward on a tape. <see cref="SavedBytes"/>: activation bytes its
/// nodes hold after compaction (each block once, as the tape counts); <see cref="FullSavedBytes"/>: what
/// the same nodes held before compaction, i.e. full backprop (null when the region never recorded in full, as in
/// checkpoint mode); index buffers are counted once per tape in <c>Tape.IndexBytes</c>.
/// </summary>
public sealed record RegionReport(string Name, RegionMode Mode, int Kept, int Size, long SavedBytes, long? FullSavedBytes, string? Note = null)
{
    public double KeepRatio => Size == 0 ? 1 : (double)Kept / Size;

    public override string ToString() =>
        $"{Name}: {Mode}, kept {Kept}/{Size}, saved {MemoryPool.FormatBytes(SavedBytes)}" +
        (FullSavedBytes is { } f ? $" (full backprop {MemoryPool.FormatBytes(f)})" : "") + (Note is null ? "" : $"; {Note}");
}
