using Sbp.Autograd;

namespace Sbp.Stochastic;

// Rules of the ops that change the size of an axis: pad, slice and concat. Along other axes they are
// position-wise; along the region's dimension they move the kept positions, and their compact backward
// needs where the input's kept positions sit in the output's compact form (never a copy of the mask).

/// <summary>
/// Constant padding. Along the region's dimension the padded positions continue the kept pattern
/// (<see cref="PositionLayout.Padded"/>): they are constants, so their gradient is dropped either way,
/// and a strided mask stays strided over the padded axis (windows cut from it keep the same offsets).
/// Backward crops the compact gradient at the number of kept padded positions in front.
/// </summary>
sealed class PadRule(int[] before, int[] after, Func<int, int, BackwardRule> compactBackward) : SbpRule
{
    internal override NodePlan Plan(RuleInput input)
    {
        var l = input.Layouts[0]!;
        int a = l.Axis;
        if (before[a] == 0 && after[a] == 0) return new NodePlan(l, [l], [], SliceSafe: true);
        var output = l.Padded(before[a], after[a]);
        // The kept slice alone pads to other sizes (sizes come from the input): not slice-safe.
        return new NodePlan(output, [l], [], SliceSafe: false, compactBackward(a, output.KeptBefore(before[a])));
    }
}

/// <summary>
/// A slice [start, start + length) along one axis. Along the region's dimension the output keeps the
/// kept positions inside the slice (renumbered); backward places the compact gradient at the first of
/// them among the input's kept positions and zeros the rest (kept positions outside the slice get none).
/// A slice that keeps every position is the identity on the layout.
/// </summary>
sealed class SliceRule(int axis, int start, int length, Func<int, BackwardRule> compactBackward) : SbpRule
{
    readonly AxisMapRule _other = new(null, [axis], null);

    internal override NodePlan Plan(RuleInput input)
    {
        var l = input.Layouts[0]!;
        if (l.Axis != axis) return _other.Plan(input);
        if (start == 0 && length == l.Size) return new NodePlan(l, [l], [], SliceSafe: true);
        var output = l.Sliced(start, length);
        return new NodePlan(output, [l], [], SliceSafe: false, compactBackward(l.KeptBefore(start)));
    }
}

/// <summary>
/// Concatenation along one axis. When the region's dimension is that axis, the output's kept positions
/// are each input's kept positions at its offset; an input without the dimension (a learned token, a
/// constant) counts as kept in full and gets a dense gradient. The backward slices the compact gradient
/// at the inputs' compact sizes (<see cref="BackwardContext.InputShape"/>), so it needs no rule of its own.
/// </summary>
sealed class ConcatRule(int axis) : SbpRule
{
    readonly AxisMapRule _other = new(null, [axis], null);

    internal override NodePlan Plan(RuleInput input)
    {
        bool along = input.Layouts.Any(l => l is { } x && x.Axis == axis);
        if (!along) return _other.Plan(input);
        var kept = new List<int>();
        int offset = 0;
        for (int i = 0; i < input.Inputs.Length; i++)
        {
            int n = input.Inputs[i].Shape[axis];
            if (input.Layouts[i] is { } l)
            {
                if (l.Axis != axis)
                    throw Refusal(input, $"gets the region's dimension on axis {axis} of some inputs and on axis {l.Axis} of its {input.Describe(i)}");
                foreach (int k in l.Kept) kept.Add(offset + k);
            }
            else kept.AddRange(Enumerable.Range(offset, n));
            offset += n;
        }
        return new NodePlan(new PositionLayout(axis, offset, kept), [.. input.Layouts], [], SliceSafe: false);
    }
}
