using Sbp.Memory;
using Sbp.Stochastic;
using Sbp.Tensors;

namespace Sbp.Autograd;

// What the tape keeps for SBP regions: index buffers of kept positions, sealed compact tensors,
// region reports, and the marks that let a failed region leave the tape as it found it.
public sealed partial class Tape
{
    readonly List<(PositionLayout Layout, Device Device)> _indexOrder = [];   // _indices' keys in the order they were made
    [ThreadStatic] static GradProbe? _probe;

    /// <summary>
    /// The kept indices of <paramref name="layout"/> as an Int32 tensor on <paramref name="device"/>,
    /// made once per tape and held (and counted in <see cref="SavedBytes"/> and <see cref="IndexBytes"/>)
    /// until the tape frees.
    /// </summary>
    internal Tensor IndexTensor(PositionLayout layout, Device device)
    {
        if (_indices.TryGetValue((layout, device), out var t)) return t;
        using (OpLabel.Push("sbp.indices"))
            t = Tensor.FromArray(layout.KeptArray, new Shape(layout.KeptCount), device).DetachFromScope();
        t.Block.Pool.SetSavedHold(t.Block, +1);
        _indices[(layout, device)] = t;
        _indexOrder.Add((layout, device));
        SavedBytes += t.Block.Bytes;
        IndexBytes += t.Block.Bytes;
        PeakSavedBytes = Math.Max(PeakSavedBytes, SavedBytes);
        return t;
    }

    /// <summary>Marks tensors of a closed region as compact (their gradients are) and sealed (they may not be used outside).</summary>
    internal void SealRegion(string region, Dictionary<long, PositionLayout> compact)
    {
        foreach (var (id, layout) in compact)
        {
            _compact[id] = layout;
            _sealed[id] = region;
        }
    }

    internal void AddRegionReport(RegionReport report) => _regions.Add(report);

    /// <summary>Frees and removes the nodes recorded from <paramref name="from"/> on.</summary>
    void DropNodes(int from)
    {
        for (int i = _nodes.Count - 1; i >= from; i--)
        {
            Free(_nodes[i]);
            _nodes.RemoveAt(i);
        }
    }

    /// <summary>Where the tape stands now: what <see cref="RollBack"/> returns it to.</summary>
    internal readonly record struct Mark(int Nodes, int Indices, int Regions);

    internal Mark Here() => new(_nodes.Count, _indexOrder.Count, _regions.Count);

    /// <summary>
    /// Undoes what was recorded since <paramref name="mark"/> (a region that failed): its nodes and the
    /// tensors they saved, the index buffers made for it and its reports, so saved bytes and the pool
    /// are as they were before.
    /// </summary>
    internal void RollBack(Mark mark)
    {
        DropNodes(mark.Nodes);
        for (int i = _indexOrder.Count - 1; i >= mark.Indices; i--)
        {
            var key = _indexOrder[i];
            var t = _indices[key];
            _indices.Remove(key);
            t.Block.Pool.SetSavedHold(t.Block, -1);
            SavedBytes -= t.Block.Bytes;
            IndexBytes -= t.Block.Bytes;
            t.Dispose();
        }
        _indexOrder.RemoveRange(mark.Indices, _indexOrder.Count - mark.Indices);
        _regions.RemoveRange(mark.Regions, _regions.Count - mark.Regions);
    }

    void FreeIndices()
    {
        foreach (var t in _indices.Values)
        {
            t.Block.Pool.SetSavedHold(t.Block, -1);
            SavedBytes -= t.Block.Bytes;
            t.Dispose();
        }
        _indices.Clear();
        _indexOrder.Clear();
        IndexBytes = 0;
    }

    /// <summary>
    /// Runs ops without recording (as <see cref="NoGrad"/>) while their outputs still require grad where an
    /// input does, so each op saves (and counts) what it would save when recording, and
    /// <see cref="GradProbe.WouldRecord"/> tells whether any op would have been recorded: a region that
    /// re-runs its body in backward learns from its first forward what full backprop would hold.
    /// </summary>
    internal static GradProbe Probe() => new();

    /// <summary>See <see cref="Probe"/>.</summary>
    internal sealed class GradProbe : IDisposable
    {
        readonly GradProbe? _previous = _probe;
        readonly NoGradScope _noGrad = NoGrad();
        readonly int _depth = _noGradDepth;   // ops of a NoGrad scope inside the probe are not probed

        public GradProbe() => _probe = this;

        /// <summary>True once an op ran with an input that requires grad (recording, it would have made a node).</summary>
        public bool WouldRecord { get; private set; }

        /// <summary>Called for an op not recorded: marks its output as requiring grad when an input does.</summary>
        internal static void OnNotRecorded(Tensor output, Tensor[] inputs)
        {
            if (_probe is not { } p || _noGradDepth != p._depth) return;
            foreach (var t in inputs)
                if (t.RequiresGrad)
                {
                    p.WouldRecord = true;
                    output.MarkWouldRequireGrad();
                    return;
                }
        }

        public void Dispose()
        {
            _noGrad.Dispose();
            _probe = _previous;
        }
    }
}
