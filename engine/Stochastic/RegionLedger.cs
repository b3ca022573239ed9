using Sbp.Autograd;
using Sbp.Memory;
using Sbp.Tensors;

namespace Sbp.Stochastic;

/// <summary>
/// What SBP keeps on a tape (its <see cref="ITapeExtension"/>): the kept-position index buffers (made once
/// per layout and device, held and counted with the tape's saved bytes until backward ends), the compact
/// tensors of closed regions (sealed: they may not be used outside), one report per region, and the marks
/// that let a failed region leave the tape as it found it.
/// </summary>
internal sealed class RegionLedger : ITapeExtension
{
    readonly Tape _tape;
    readonly OrderedDictionary<(PositionLayout, Device), Tensor> _indices = [];   // in the order they were made (rollback drops the newest)
    readonly Dictionary<long, PositionLayout> _compact = [];   // tensor id -> layout of its compact gradient
    readonly Dictionary<long, string> _sealed = [];             // compact tensors of closed regions -> region name
    readonly List<RegionReport> _regions = [];

    RegionLedger(Tape tape) => _tape = tape;

    /// <summary>The tape's ledger, made on first use.</summary>
    public static RegionLedger Of(Tape tape)
    {
        if (tape.Extension is RegionLedger ledger) return ledger;
        if (tape.Extension is not null) throw new InvalidOperationException("The tape already holds another extension.");
        ledger = new RegionLedger(tape);
        tape.Extension = ledger;
        return ledger;
    }

    /// <summary>The tape's ledger if a region ran on it.</summary>
    public static RegionLedger? Find(Tape tape) => tape.Extension as RegionLedger;

    public IReadOnlyList<RegionReport> Regions => _regions;

    /// <summary>Bytes of the index buffers held; part of the tape's saved bytes.</summary>
    public long IndexBytes => _indices.Values.Sum(t => t.Block.Bytes);

    /// <summary>The kept indices of <paramref name="layout"/> as an Int32 tensor on <paramref name="device"/>, made once per tape.</summary>
    public Tensor IndexTensor(PositionLayout layout, Device device)
    {
        if (_indices.TryGetValue((layout, device), out var t)) return t;
        using (OpLabel.Push("sbp.indices"))
            t = Tensor.FromArray(layout.KeptArray, new Shape(layout.KeptCount), device).DetachFromScope();
        t.IndexBound = layout.Size;   // kept positions of the layout: valid by construction, no device check needed
        _tape.Store.HoldExtra(t);
        _indices[(layout, device)] = t;
        return t;
    }

    /// <summary>Marks tensors of a closed region as compact (their gradients are) and sealed (they may not be used outside).</summary>
    public void SealRegion(string region, Dictionary<long, PositionLayout> compact)
    {
        foreach (var (id, layout) in compact)
        {
            _compact[id] = layout;
            _sealed[id] = region;
        }
    }

    public void AddReport(RegionReport report) => _regions.Add(report);

    /// <summary>The region reported since <paramref name="mark"/> holds <paramref name="bytes"/> fewer (its saved tensors were packed).</summary>
    internal void ShrinkReportsSince(Mark mark, long bytes)
    {
        if (mark.Regions < _regions.Count) _regions[mark.Regions] = _regions[mark.Regions] with { SavedBytes = _regions[mark.Regions].SavedBytes - bytes };   // one region reports once
    }

    /// <summary>Where the tape stands now: what <see cref="RollBack"/> returns it to.</summary>
    internal readonly record struct Mark(int Nodes, int Indices, int Regions);

    public Mark Here() => new(_tape.Nodes.Count, _indices.Count, _regions.Count);

    /// <summary>
    /// Undoes what was recorded since <paramref name="mark"/> (a region that failed or runs again): its nodes and
    /// the tensors they saved, the index buffers made for it and its reports, so saved bytes and the pool are as before.
    /// </summary>
    public void RollBack(Mark mark)
    {
        _tape.DropNodes(mark.Nodes);
        for (int i = _indices.Count - 1; i >= mark.Indices; i--)
        {
            var t = _indices.GetAt(i).Value;
            _indices.RemoveAt(i);
            _tape.Store.ReleaseExtra(t);
        }
        _regions.RemoveRange(mark.Regions, _regions.Count - mark.Regions);
    }

    void ITapeExtension.CheckInput(string op, Tensor input)
    {
        if (_sealed.TryGetValue(input.Id, out var region))
            throw new SbpRegionException(
                $"{op}: its input {input.Shape} was made inside SBP region '{region}' and holds only the kept positions' gradient; " +
                "a tensor made inside a region may leave it only as the region's output (return it from the region body).");
    }

    ICompactForm? ITapeExtension.CompactFormOf(Tensor t) => _compact.GetValueOrDefault(t.Id);

    /// <summary>Frees the index buffers (backward ended or the tape was disposed).</summary>
    public void Release()
    {
        foreach (var t in _indices.Values) _tape.Store.ReleaseExtra(t);
        _indices.Clear();
    }
}

/// <summary>SBP's view of a tape: its region reports and index buffers.</summary>
public static class TapeRegions
{
    extension(Tape tape)
    {
        /// <summary>One report per SBP region recorded on this tape: kept count and saved bytes with and without SBP.</summary>
        public IReadOnlyList<RegionReport> Regions => RegionLedger.Find(tape)?.Regions ?? [];

        /// <summary>Bytes of the SBP index buffers (kept positions) held for backward; part of <see cref="Tape.SavedBytes"/>.</summary>
        public long IndexBytes => RegionLedger.Find(tape)?.IndexBytes ?? 0;
    }
}
