using Sbp.Autograd;
using Sbp.Backends;
using Sbp.Stochastic;
using Sbp.Tensors;

namespace Sbp;

// Sum, mean and max over dimensions.
public static partial class Ops
{
    /// <summary>Normalized, sorted, distinct axes; all axes when none are given.</summary>
    static int[] Axes(string op, Tensor x, int[] dims)
    {
        if (dims.Length == 0) return Enumerable.Range(0, x.Rank).ToArray();
        var axes = dims.Select(d => Shape.NormalizeAxis(d, x.Rank, op)).Distinct().Order().ToArray();
        if (axes.Length != dims.Length) throw new ArgumentException($"{op}: dimension list [{string.Join(", ", dims)}] repeats an axis.");
        return axes;
    }

    static Shape KeptShape(Tensor x, int[] axes) => KeptShape(x.Shape, axes);

    static Shape KeptShape(Shape shape, int[] axes)
    {
        var d = shape.ToArray();
        foreach (var a in axes) d[a] = 1;
        return new Shape(d);
    }

    static Shape DroppedShape(Tensor x, int[] axes) =>
        new(Enumerable.Range(0, x.Rank).Where(i => !axes.Contains(i)).Select(i => x.Shape[i]).ToArray());

    /// <summary>Sum over <paramref name="dims"/> (all when empty). Backward: the gradient broadcast back.</summary>
    public static Tensor Sum(Tensor x, int[] dims, bool keepDim = false)
    {
        if (AutocastWidens(x)) return Widening([x], wide => Sum(wide[0]!, dims, keepDim));
        CheckFloat("sum", x);
        var axes = Axes("sum", x, dims);
        var kept = KeptShape(x, axes);
        var y = New("sum", kept, x);
        x.Backend.ReduceSum(x, y);
        var result = keepDim ? y : ViewAndDispose(y, DroppedShape(x, axes));
        return Tape.Record("sum", result, [x], [], ctx =>
        {
            using var g = ctx.Grad.View(KeptShape(ctx.InputShape(0), axes));
            return [BroadcastTo(g, ctx.InputShape(0))];
        }, ReduceRule(axes, keepDim));
    }

    /// <summary>Sum of all elements, shape [].</summary>
    public static Tensor Sum(Tensor x) => Sum(x, []);

    /// <summary>Mean over <paramref name="dims"/> (all when empty).</summary>
    public static Tensor Mean(Tensor x, int[] dims, bool keepDim = false)
    {
        if (AutocastWidens(x)) return Widening([x], wide => Mean(wide[0]!, dims, keepDim));
        CheckFloat("mean", x);
        var axes = Axes("mean", x, dims);
        long count = axes.Aggregate(1L, (p, a) => p * x.Shape[a]);
        using var s = Sum(x, dims, keepDim);
        return Mul(s, 1f / count);
    }

    /// <summary>Mean of all elements, shape [].</summary>
    public static Tensor Mean(Tensor x) => Mean(x, []);

    /// <summary>
    /// Maximum over <paramref name="dims"/> (all when empty). Backward: the gradient goes to the
    /// positions that hold the maximum, split evenly among ties (as torch.amax).
    /// </summary>
    public static Tensor Max(Tensor x, int[] dims, bool keepDim = false)
    {
        if (AutocastWidens(x)) return Widening([x], wide => Max(wide[0]!, dims, keepDim));
        CheckFloat("max", x);
        var axes = Axes("max", x, dims);
        if (axes.Any(a => x.Shape[a] == 0)) throw new ArgumentException($"max: cannot reduce over an empty dimension of {x.Shape}.");
        var kept = KeptShape(x, axes);
        var y = New("max", kept, x);
        x.Backend.ReduceMax(x, y);
        var result = keepDim ? y : ViewAndDispose(y, DroppedShape(x, axes));
        return Tape.Record("max", result, [x], [x, result], ctx =>
        {
            var kept = KeptShape(ctx.InputShape(0), axes);
            using var yk = ctx.Saved(1).View(kept);
            using var g = ctx.Grad.View(kept);
            var mask = New("max.backward", ctx.InputShape(0), g);
            mask.Backend.Binary(BinaryOp.Equal, ctx.Saved(0), yk, mask);
            using var count = SumTo(mask, kept);
            return [Mul(mask, Div(g, count))];
        }, ReduceRule(axes, keepDim));
    }

    /// <summary>Maximum of all elements, shape [].</summary>
    public static Tensor Max(Tensor x) => Max(x, []);

    /// <summary>SBP: a reduction mixes its reduced axes; the others map to the output (kept or dropped).</summary>
    static SbpRule ReduceRule(int[] axes, bool keepDim) => SbpRule.Mapped((_, inRank, _) =>
    {
        var map = new int[inRank];
        int o = 0;
        for (int j = 0; j < inRank; j++)
        {
            bool reduced = axes.Contains(j);
            map[j] = reduced ? -1 : o;
            if (!reduced || keepDim) o++;
        }
        return map;
    }, "it is summed, averaged or maximized over");

    static Tensor ViewAndDispose(Tensor t, Shape shape)
    {
        var v = t.View(shape);
        t.Dispose();
        return v;
    }
}
