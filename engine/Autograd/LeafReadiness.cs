using Sbp.Tensors;

namespace Sbp.Autograd;

/// <summary>
/// Tells an <see cref="IGradientReadyObserver"/> when each leaf's gradient is final during one backward pass: a leaf
/// is ready once every recorded op that took it as input has run backward. An op that re-runs a region on a tape
/// of its own (recompute, checkpoint) may add to any parameter the region uses, which the outer tape does not
/// list: leaves that become ready after such an op in recording order are held back until it has run.
/// Leaves that no recorded op took are never reported (the observer finishes them after backward).
/// </summary>
internal sealed class LeafReadiness
{
    readonly IGradientReadyObserver _observer;
    readonly Dictionary<Tensor, int> _uses = new(ReferenceEqualityComparer.Instance);
    readonly List<Tensor> _held = [];
    readonly int _firstRerun = -1;

    public LeafReadiness(IReadOnlyList<TapeNode> nodes, IGradientReadyObserver observer)
    {
        _observer = observer;
        for (int i = 0; i < nodes.Count; i++)
        {
            if (nodes[i].RunsSubTape && _firstRerun < 0) _firstRerun = i;
            foreach (var input in nodes[i].Inputs)
                if (input.IsLeaf && input.RequiresGrad) _uses[input] = _uses.GetValueOrDefault(input) + 1;
        }
    }

    /// <summary>Node <paramref name="position"/> (its place on the tape) finished backward, or had no gradient to run with.</summary>
    public void Done(TapeNode node, int position)
    {
        foreach (var input in node.Inputs)
        {
            if (!_uses.TryGetValue(input, out int left)) continue;
            if (left > 1) { _uses[input] = left - 1; continue; }
            _uses.Remove(input);
            if (_firstRerun >= 0 && position > _firstRerun) _held.Add(input);
            else _observer.GradientReady(input);
        }
        if (position == _firstRerun)
        {
            foreach (var leaf in _held) _observer.GradientReady(leaf);
            _held.Clear();
        }
        _observer.BackwardProgress();
    }
}
