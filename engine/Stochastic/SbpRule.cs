using Sbp.Autograd;
using Sbp.Tensors;

namespace Sbp.Stochastic;

/// <summary>
/// How an op treats an SBP region's dimension (docs/SBP.md section 3). Given where the region
/// dimension sits in the op's inputs, a rule says where it sits in the output, in which form each
/// input's gradient comes back (compact or dense) and how each saved tensor is compacted, or
/// refuses the op with a message that names it. An op records its rule with
/// <see cref="Tape.Record"/>; an op without one is refused inside a region.
/// </summary>
public abstract class SbpRule : IOpRule
{
    internal abstract NodePlan Plan(RuleInput input);

    /// <summary>Every input broadcast against the others (NumPy rules), nothing mixed: add, mul, GELU, dropout.</summary>
    public static SbpRule Elementwise { get; } = new AxisMapRule(null, [], null);

    /// <summary>
    /// Position-wise except along <paramref name="mixedAxes"/> of the output (contracted, normalized
    /// or reduced in place), with <paramref name="parameterInputs"/> never carrying positions (weights,
    /// biases). Other inputs align with the output from the right.
    /// </summary>
    public static SbpRule RowWise(int[] mixedAxes, params int[] parameterInputs) => new AxisMapRule(null, mixedAxes, parameterInputs);

    /// <summary><see cref="RowWise(int[], int[])"/> with saved tensors <paramref name="wholeSaved"/> (per-channel statistics) kept whole.</summary>
    public static SbpRule RowWise(int[] mixedAxes, int[] parameterInputs, int[] wholeSaved, string? why = null) =>
        new AxisMapRule(null, mixedAxes, parameterInputs, why, wholeSaved);

    /// <summary>Explicit maps: <paramref name="maps"/>(input index, input rank, output rank) gives each input axis's output axis (-1: mixed), or null for a parameter.</summary>
    public static SbpRule Mapped(Func<int, int, int, int[]?> maps, string? why = null) => new AxisMapRule(maps, [], null, why);

    /// <summary>A reshape: the layout follows the flat order (see <see cref="PositionLayout.Reshape"/>).</summary>
    public static SbpRule Reshape { get; } = new ReshapeRule();

    /// <summary>A permute: output axis i is input axis perm[i].</summary>
    public static SbpRule Permute(int[] perm) => new PermuteRule(perm);

    /// <summary>A roll by <paramref name="shifts"/> along <paramref name="axes"/>; along the region dimension the kept positions roll too.</summary>
    public static SbpRule Roll(int[] axes, int[] shifts, Func<int, int[], BackwardRule> compactBackward) => new RollRule(axes, shifts, compactBackward);

    /// <summary>Scaled dot-product attention: drop query rows (q compact, k and v dense), or position-wise along batch and heads.</summary>
    public static SbpRule Attention { get; } = new AttentionRule();

    /// <summary>
    /// A matrix product a @ b: position-wise along the batch axes, a's rows and b's columns; when a carries
    /// the region's dimension on its rows and b carries it too (attention written as matmuls: q @ k^T,
    /// probabilities @ v), a's rows stay compact and b is read in full (its gradient is dense), as
    /// <see cref="Attention"/> drops query rows.
    /// </summary>
    public static SbpRule Matmul { get; } = new MatmulRule();

    /// <summary>Constant padding by <paramref name="before"/>/<paramref name="after"/> positions per axis (see <see cref="PadRule"/>);
    /// <paramref name="compactBackward"/>(axis, kept padded positions in front) crops a compact gradient.</summary>
    public static SbpRule Pad(int[] before, int[] after, Func<int, int, BackwardRule> compactBackward) => new PadRule(before, after, compactBackward);

    /// <summary>A slice of <paramref name="length"/> positions from <paramref name="start"/> along <paramref name="axis"/> (see <see cref="SliceRule"/>);
    /// <paramref name="compactBackward"/>(compact start) places a compact gradient.</summary>
    public static SbpRule Slice(int axis, int start, int length, Func<int, BackwardRule> compactBackward) => new SliceRule(axis, start, length, compactBackward);

    /// <summary>Concatenation along <paramref name="axis"/> (see <see cref="ConcatRule"/>).</summary>
    public static SbpRule Concat(int axis) => new ConcatRule(axis);

    /// <summary>Refused inside a region whenever an input carries the region dimension.</summary>
    public static SbpRule Refuse(string why) => new RefuseRule(why);

    /// <summary>A refusal of an op that mixes positions along the region's dimension: names the region, the op and why, and says what to do.</summary>
    internal static Exception Refusal(RuleInput input, string reason) =>
        Refusal(input, reason, "Ops that mix positions along the region's dimension " +
            "(convolutions with kernel > 1 along it, batch norm in training mode, pooling or reductions across it) cannot run " +
            "inside a region: move the op out of the region (end the region before it), or run it over another dimension.");

    /// <summary>A refusal with its own advice.</summary>
    internal static Exception Refusal(RuleInput input, string reason, string advice) =>
        new SbpRegionException($"SBP region '{input.Region}': {input.Op} {reason}. {advice}");
}

/// <summary>An SBP configuration the engine cannot run: names the region, the op and the reason.</summary>
public sealed class SbpRegionException(string message) : InvalidOperationException(message);

/// <summary>What a rule sees: the op, its inputs' shapes and layouts (null: no region dimension), its output and saved tensors.</summary>
internal sealed record RuleInput(string Region, string Op, Tensor[] Inputs, PositionLayout?[] Layouts, Tensor Output, Tensor?[] Saved)
{
    public string Describe(int input) => $"input {input} {Inputs[input].Shape}";
}

/// <summary>
/// A rule's answer for one node. <see cref="Inputs"/>[j]: the layout of input j's compact form in
/// this node (own or assigned by the op, e.g. attention's bias rows), null when the input is used
/// in full (its gradient comes back dense). <see cref="Saved"/>[i]: how saved tensor i is compacted
/// (null: kept whole). <see cref="SliceSafe"/>: the output at kept positions depends only on the
/// input at kept positions, so the region can be re-run on the kept slice (recompute mode).
/// </summary>
internal sealed record NodePlan(PositionLayout? Output, PositionLayout?[] Inputs, PositionLayout?[] Saved, bool SliceSafe, BackwardRule? CompactBackward = null);

/// <summary>
/// The common rule: each input axis maps to an output axis (broadcast-aligned from the right by
/// default) or is mixed (-1); parameters carry no positions. Saved tensors that are inputs or the
/// output take their layout; other saved tensors align with the output from the right.
/// </summary>
sealed class AxisMapRule(Func<int, int, int, int[]?>? maps, int[] mixedOutputAxes, int[]? parameters, string? why = null, int[]? wholeSaved = null) : SbpRule
{
    int[]? MapOf(int input, int inRank, int outRank)
    {
        if (maps is not null) return maps(input, inRank, outRank);
        if (parameters is not null && parameters.Contains(input)) return null;
        var map = new int[inRank];
        var mixed = mixedOutputAxes.Select(a => a < 0 ? a + outRank : a).ToHashSet();
        for (int j = 0; j < inRank; j++)
        {
            int o = j + outRank - inRank;
            map[j] = o < 0 || mixed.Contains(o) ? -1 : o;
        }
        return map;
    }

    internal override NodePlan Plan(RuleInput input)
    {
        var outShape = input.Output.Shape;
        int outAxis = -1;
        PositionLayout? carried = null;
        for (int i = 0; i < input.Inputs.Length; i++)
        {
            var l = input.Layouts[i];
            if (l is null) continue;
            var map = MapOf(i, input.Inputs[i].Rank, outShape.Rank);
            int o = map is null ? -1 : map[l.Axis];
            if (o < 0)
                throw Refusal(input, $"mixes positions along axis {l.Axis} of its {input.Describe(i)}, which carries the region's dimension{(why is null ? "" : $" ({why})")}");
            if (carried is not null && (o != outAxis || !carried.KeptArray.AsSpan().SequenceEqual(l.KeptArray)))
                throw Refusal(input, $"gets the region's dimension on different axes or with different kept positions in its inputs ({l} vs {carried})");
            outAxis = o;
            carried = l;
        }
        if (carried is null) throw new InvalidOperationException("AxisMapRule: no input carries a layout.");
        if (outShape[outAxis] != carried.Size)
            throw Refusal(input, $"reduces or resizes axis {outAxis} of its output {outShape}, which carries the region's dimension (size {carried.Size})");
        var output = carried.OnAxis(outAxis);

        // Inputs without their own layout that span the region dimension in full (a position
        // embedding, a mask built inside the region) are read at kept positions too.
        var layouts = new PositionLayout?[input.Inputs.Length];
        for (int i = 0; i < input.Inputs.Length; i++)
        {
            if (input.Layouts[i] is { } own) { layouts[i] = own; continue; }
            var map = MapOf(i, input.Inputs[i].Rank, outShape.Rank);
            if (map is null) continue;
            int j = Array.IndexOf(map, outAxis);
            if (j >= 0 && input.Inputs[i].Shape[j] == carried.Size) layouts[i] = carried.OnAxis(j);
        }
        var saved = SavedLayouts(input, layouts, output, wholeSaved);
        return new NodePlan(output, layouts, saved, SliceSafe: layouts.Select((l, i) => l is null || input.Layouts[i] is not null).All(b => b));
    }

    /// <summary>Layouts of saved tensors: an input's or the output's own, else aligned with the output from the right.</summary>
    internal static PositionLayout?[] SavedLayouts(RuleInput input, PositionLayout?[] inputLayouts, PositionLayout output, int[]? wholeSaved)
    {
        var saved = new PositionLayout?[input.Saved.Length];
        for (int s = 0; s < input.Saved.Length; s++)
        {
            var t = input.Saved[s];
            if (t is null || (wholeSaved?.Contains(s) ?? false)) continue;
            int asInput = Array.FindIndex(input.Inputs, x => SameData(x, t));
            if (asInput >= 0) { saved[s] = inputLayouts[asInput]; continue; }
            if (SameData(input.Output, t)) { saved[s] = output; continue; }
            int axis = output.Axis - (input.Output.Rank - t.Rank);
            if (axis < 0 || t.Shape[axis] == 1) continue;
            if (t.Shape[axis] != output.Size)
                throw Refusal(input, $"saves a tensor {t.Shape} whose axis {axis} neither spans the region's dimension ({output.Size}) nor has size 1; it has no SBP rule for it");
            saved[s] = output.OnAxis(axis);
        }
        return saved;
    }

    internal static bool SameData(Tensor a, Tensor b) => a.Block.Id == b.Block.Id && a.Shape == b.Shape;
}

sealed class ReshapeRule : SbpRule
{
    internal override NodePlan Plan(RuleInput input)
    {
        var l = input.Layouts[0]!;
        var output = l.Reshape(input.Inputs[0].Shape, input.Output.Shape) ??
            throw Refusal(input, $"to {input.Output.Shape} splits or interleaves the region's dimension ({l} of {input.Inputs[0].Shape}) so that kept " +
                "positions are no longer whole slices of one axis",
                "When the dimension is cut into windows, every window must keep the same offsets: use a strided mask whose stride divides " +
                "the window (or a mask drawn once per window and repeated), or make the window cover the whole dimension.");
        return new NodePlan(output, [l], [], SliceSafe: true);
    }
}

sealed class MatmulRule : SbpRule
{
    // a's batch axes and rows map to the output's, b's batch axes and columns too; a's columns and b's rows are contracted.
    static readonly AxisMapRule Products = new((input, inRank, outRank) =>
    {
        var map = new int[inRank];
        for (int j = 0; j < inRank - 2; j++) map[j] = j + outRank - inRank;
        map[inRank - 2] = input == 0 ? outRank - 2 : -1;
        map[inRank - 1] = input == 0 ? -1 : outRank - 1;
        return map;
    }, [], null, "the contracted axis of a matrix product");

    internal override NodePlan Plan(RuleInput input)
    {
        if (input.Layouts is [{ } la, { } lb] && la.Axis == input.Inputs[0].Rank - 2 && lb.Axis >= input.Inputs[1].Rank - 2)
        {
            // Rows of a compact, b in full: dA = dC B^T needs only the kept rows, and dB = A^T dC sums over
            // rows, where the dropped ones add nothing. Not slice-safe: b is read outside the kept slice.
            var output = la.OnAxis(input.Output.Rank - 2);
            PositionLayout?[] layouts = [la, null];
            return new NodePlan(output, layouts, AxisMapRule.SavedLayouts(input, layouts, output, null), SliceSafe: false);
        }
        return Products.Plan(input);
    }
}

sealed class PermuteRule(int[] perm) : SbpRule
{
    internal override NodePlan Plan(RuleInput input)
    {
        var l = input.Layouts[0]!;
        var output = l.OnAxis(Array.IndexOf(perm, l.Axis));
        return new NodePlan(output, [l], [], SliceSafe: true);
    }
}

sealed class RollRule(int[] axes, int[] shifts, Func<int, int[], BackwardRule> compactBackward) : SbpRule
{
    internal override NodePlan Plan(RuleInput input)
    {
        var l = input.Layouts[0]!;
        int k = Array.IndexOf(axes, l.Axis);
        if (k < 0) return new NodePlan(l, [l], [], SliceSafe: true);
        var output = l.Rolled(shifts[k]);
        // The compact form rotates by the number of kept positions that wrap around.
        var compactShifts = (int[])shifts.Clone();
        compactShifts[k] = l.CompactRoll(shifts[k]);
        // On the kept slice alone the roll would move by the full shift: not slice-safe unless it is 0.
        return new NodePlan(output, [l], [], SliceSafe: shifts[k] % l.Size == 0, compactBackward(k, compactShifts));
    }
}

sealed class AttentionRule : SbpRule
{
    internal override NodePlan Plan(RuleInput input)
    {
        // Inputs q [B, H, N, D], k [B, H, M, D], v [B, H, M, Dv], optional bias broadcastable to [B, H, N, M].
        // Saved: q, k, v, P [B, H, N, M].
        var lq = input.Layouts[0];
        bool batchLike = input.Layouts.Take(3).Any(l => l is { Axis: 0 or 1 });
        if (batchLike)
        {
            // Position-wise along batch or heads: every input and saved tensor is read at kept slices.
            var l = input.Layouts.Take(3).First(x => x is { Axis: 0 or 1 })!;
            for (int i = 0; i < 3; i++)
                if (input.Layouts[i] is not { } li || !li.Equals(l))
                    throw Refusal(input, $"gets the region's dimension on axis {l.Axis} of some of q, k, v but not all ({input.Describe(i)}: {input.Layouts[i]?.ToString() ?? "none"})");
            var layouts = new PositionLayout?[input.Inputs.Length];
            for (int i = 0; i < 3; i++) layouts[i] = l;
            if (input.Inputs.Length > 3) layouts[3] = AlignedRows(input.Inputs[3].Shape, l.Axis - 4, l);
            var saved = new PositionLayout?[input.Saved.Length];
            for (int s = 0; s < saved.Length; s++) if (input.Saved[s] is not null) saved[s] = l;
            return new NodePlan(l, layouts, saved, SliceSafe: input.Inputs.Length <= 3 || input.Layouts[3] is not null || layouts[3] is null);
        }
        if (lq is null || lq.Axis != 2)
        {
            int bad = lq is null ? Array.FindIndex(input.Layouts, x => x is not null) : 0;
            throw Refusal(input, $"gets the region's dimension on axis {input.Layouts[bad]!.Axis} of its {input.Describe(bad)}; " +
                "attention supports it on the query rows (axis 2 of q: keys and values stay dense) or on the batch and head axes");
        }
        // Drop query rows: q and P rows compact, k and v in full (their gradients are dense).
        var plan = new PositionLayout?[input.Inputs.Length];
        plan[0] = lq;
        if (input.Inputs.Length > 3) plan[3] = AlignedRows(input.Inputs[3].Shape, -2, lq);
        return new NodePlan(lq, plan, [lq, null, null, lq], SliceSafe: false);
    }

    /// <summary>The bias's query-row axis (from the right of [B, H, N, M]) when it spans the rows, else null (broadcast).</summary>
    static PositionLayout? AlignedRows(Shape bias, int fromRight, PositionLayout l)
    {
        int axis = bias.Rank + fromRight;
        return axis >= 0 && bias[axis] == l.Size && l.Size != 1 ? l.OnAxis(axis) : null;
    }
}

sealed class RefuseRule(string why) : SbpRule
{
    internal override NodePlan Plan(RuleInput input)
    {
        int i = Array.FindIndex(input.Layouts, l => l is not null);
        throw Refusal(input, $"cannot run on its {input.Describe(i)}, which carries the region's dimension on axis {input.Layouts[i]!.Axis}: {why}");
    }
}
