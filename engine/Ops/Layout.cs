using Sbp.Autograd;
using Sbp.Stochastic;
using Sbp.Tensors;

namespace Sbp;

// Ops that rearrange elements: reshape (a free view), permute/transpose, slice, concat.
public static partial class Ops
{
    /// <summary>
    /// The same elements in a new shape, sharing memory (no copy). One dimension may be -1 and is
    /// inferred. Backward: reshape the gradient back.
    /// </summary>
    public static Tensor Reshape(Tensor x, params int[] shape)
    {
        if (x.IsDisposed) throw new ObjectDisposedException($"reshape: the input tensor {x.Shape} was disposed.");
        var target = InferShape("reshape", x, shape);
        return Tape.Record("reshape", x.View(target), [x], [], ctx => [Reshape(ctx.Grad, ctx.InputShape(0).ToArray())], SbpRule.Reshape);
    }

    static Shape InferShape(string op, Tensor x, int[] shape)
    {
        int infer = Array.IndexOf(shape, -1);
        if (infer >= 0 && Array.LastIndexOf(shape, -1) != infer)
            throw new ShapeMismatchException($"{op}: at most one dimension can be -1, got [{string.Join(", ", shape)}].");
        long known = 1;
        for (int i = 0; i < shape.Length; i++)
            if (i != infer)
            {
                if (shape[i] < 0) throw new ShapeMismatchException($"{op}: invalid dimension {shape[i]} in [{string.Join(", ", shape)}].");
                known *= shape[i];
            }
        var dims = (int[])shape.Clone();
        if (infer >= 0)
        {
            if (known == 0 || x.Numel % known != 0)
                throw new ShapeMismatchException($"{op}: cannot infer -1 in [{string.Join(", ", shape)}] for {x.Shape} ({x.Numel} elements).");
            dims[infer] = (int)(x.Numel / known);
        }
        var target = new Shape(dims);
        if (target.Numel != x.Numel)
            throw new ShapeMismatchException($"{op}: {x.Shape} ({x.Numel} elements) cannot be reshaped to {target} ({target.Numel} elements).");
        return target;
    }

    /// <summary>Reorders axes: output axis i is input axis perm[i]. Copies. Backward: the inverse permutation.</summary>
    public static Tensor Permute(Tensor x, params int[] perm)
    {
        CheckAlive("permute", x, "input");
        if (perm.Length != x.Rank)
            throw new ShapeMismatchException($"permute: {perm.Length} axes given for a tensor of rank {x.Rank} ({x.Shape}).");
        var p = perm.Select(d => Shape.NormalizeAxis(d, x.Rank, "permute")).ToArray();
        // A 16-bit tensor whose last axis stays last (attention's head split and merge) is copied as it is, in pairs.
        bool pairs = MovesPairs(x) && p[^1] == x.Rank - 1;
        if (!pairs && AutocastWidens(x)) return Widening([x], wide => Permute(wide[0]!, perm));
        if (!pairs) CheckFloat("permute", x);
        if (p.Distinct().Count() != p.Length)
            throw new ArgumentException($"permute: [{string.Join(", ", perm)}] repeats an axis; it must be a permutation of 0..{x.Rank - 1}.");
        var shape = new Shape(p.Select(d => x.Shape[d]).ToArray());
        // Moving only axes of size 1 keeps the memory order: a view (attention's head split with one head).
        Tensor y;
        if (KeepsMemoryOrder(x.Shape, p)) y = x.View(shape);
        else
        {
            y = NewOfType("permute", shape, x);
            using var from = pairs ? x.AsFloatPairs() : null;
            using var to = pairs ? y.AsFloatPairs() : null;
            x.Backend.Permute(from ?? x, p, to ?? y);
        }
        var inverse = new int[p.Length];
        for (int i = 0; i < p.Length; i++) inverse[p[i]] = i;
        return Tape.Record("permute", y, [x], [], ctx => [Permute(ctx.Grad, inverse)], SbpRule.Permute(p));
    }

    /// <summary>A 16-bit tensor with an even last axis: a copy that keeps that axis whole moves Float32 pairs (<see cref="Tensor.AsFloatPairs"/>).</summary>
    static bool MovesPairs(Tensor x) => x.DType.Is16Bit() && x.Rank > 0 && x.Shape[-1] % 2 == 0;

    /// <summary>Whether permuting by p leaves the axes of size above 1 in their order (then the elements do not move).</summary>
    static bool KeepsMemoryOrder(Shape shape, int[] p)
    {
        int last = -1;
        foreach (int d in p)
            if (shape[d] > 1)
            {
                if (d < last) return false;
                last = d;
            }
        return true;
    }

    /// <summary>Swaps two axes (a permute).</summary>
    public static Tensor Transpose(Tensor x, int dim0, int dim1)
    {
        if (AutocastWidens(x)) return Widening([x], wide => Transpose(wide[0]!, dim0, dim1));
        var perm = Enumerable.Range(0, x.Rank).ToArray();
        int a = Shape.NormalizeAxis(dim0, x.Rank, "transpose"), b = Shape.NormalizeAxis(dim1, x.Rank, "transpose");
        (perm[a], perm[b]) = (perm[b], perm[a]);
        return Permute(x, perm);
    }

    /// <summary>x[..., start : start + length, ...] along dim (a copy). Backward: the gradient placed into zeros.</summary>
    public static Tensor Slice(Tensor x, int dim, int start, int length)
    {
        CheckAlive("slice", x, "input");
        int d = Shape.NormalizeAxis(dim, x.Rank, "slice");
        bool pairs = MovesPairs(x) && d < x.Rank - 1;   // a 16-bit tensor sliced along another axis than its last: in pairs
        if (!pairs && AutocastWidens(x)) return Widening([x], wide => Slice(wide[0]!, dim, start, length));
        if (!pairs) CheckFloat("slice", x);
        if (start < 0 || length < 0 || start + length > x.Shape[d])
            throw new ArgumentOutOfRangeException(nameof(start),
                $"slice: [{start}, {start + length}) is outside dimension {d} of {x.Shape} (size {x.Shape[d]}).");
        var y = NewOfType("slice", x.Shape.With(d, length), x);
        using (var from = pairs ? x.AsFloatPairs() : null)
        using (var to = pairs ? y.AsFloatPairs() : null)
            x.Backend.CopyAlongDim(from ?? x, start, to ?? y, 0, d, length, accumulate: false);
        return Tape.Record("slice", y, [x], [], SliceBackward(d, start), SbpRule.Slice(d, start, length, compactStart => SliceBackward(d, compactStart)));
    }

    /// <summary>Slice's backward: the gradient placed at <paramref name="start"/> along <paramref name="d"/> into zeros (inside an SBP region, at the compact start).</summary>
    static BackwardRule SliceBackward(int d, int start) => ctx =>
    {
        var dx = Tensor.Zeros(ctx.InputShape(0), ctx.Grad.Device);
        dx.Backend.CopyAlongDim(ctx.Grad, 0, dx, start, d, ctx.Grad.Shape[d], accumulate: false);
        return [dx];
    };

    /// <summary>Joins tensors along dim; all other dimensions must match. Backward: slices of the gradient.</summary>
    public static Tensor Concat(IReadOnlyList<Tensor> tensors, int dim)
    {
        if (AutocastWidens([.. tensors])) return Widening([.. tensors], wide => Concat([.. wide.Select(t => t!)], dim));
        if (tensors.Count == 0) throw new ArgumentException("concat: needs at least one tensor.");
        var first = tensors[0];
        int d = Shape.NormalizeAxis(dim, first.Rank, "concat");
        int total = 0;
        foreach (var t in tensors)
        {
            CheckFloats("concat", first, t);
            if (t.Rank != first.Rank || Enumerable.Range(0, t.Rank).Any(i => i != d && t.Shape[i] != first.Shape[i]))
                throw new ShapeMismatchException($"concat along {d}: shapes {string.Join(", ", tensors.Select(x => x.Shape))} differ outside dimension {d}.");
            total += t.Shape[d];
        }
        var y = New("concat", first.Shape.With(d, total), first);
        int at = 0;
        foreach (var t in tensors)
        {
            y.Backend.CopyAlongDim(t, 0, y, at, d, t.Shape[d], accumulate: false);
            at += t.Shape[d];
        }
        int count = tensors.Count;
        return Tape.Record("concat", y, [.. tensors], [], ctx =>
        {
            // Starts from the inputs' sizes as backward sees them: inside an SBP region, compact along d.
            var grads = new Tensor?[count];
            for (int i = 0, at = 0; i < grads.Length; at += ctx.InputShape(i)[d], i++)
                if (ctx.NeedsGrad(i)) grads[i] = Slice(ctx.Grad, d, at, ctx.InputShape(i)[d]);
            return grads;
        }, SbpRule.Concat(d));
    }
}
