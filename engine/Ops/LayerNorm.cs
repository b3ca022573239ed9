using Sbp.Autograd;
using Sbp.Stochastic;
using Sbp.Tensors;

namespace Sbp;

// Layer normalization over the trailing dims (one fused kernel each way).
public static partial class Ops
{
    /// <summary>
    /// Layer norm (PyTorch's semantics): normalizes x over its trailing dims
    /// <paramref name="normalizedShape"/> (x is seen as [rows, cols], cols = their product) with the
    /// biased variance, y = (x - mean) / sqrt(var + eps) * weight + bias; weight and bias (each of
    /// shape normalizedShape) are optional. Saves x and the per-row mean and rstd (and references the
    /// weight when x needs a gradient); when only the bias needs a gradient it saves nothing.
    /// Backward: the fused formulas of <see cref="Backends.IBackend.LayerNormBackward"/>.
    /// <para><paramref name="outputType"/>: Float32 (null, the default) or a 16-bit type that y is rounded to where it is
    /// written, the bits of the Float32 layer norm followed by <see cref="To"/> in one pass: for an output that only feeds
    /// 16-bit GEMMs under autocast, which would cast it (<see cref="Nn.LayerNorm.FeedsGemm"/>).</para>
    /// </summary>
    public static Tensor LayerNorm(Tensor x, int[] normalizedShape, Tensor? weight = null, Tensor? bias = null, float eps = 1e-5f,
        DType? outputType = null)
    {
        // Under autocast (PyTorch's Float32 list) a 16-bit x is read as its exact widening by the kernels, which also save it
        // as it is: no cast pass either way; Float32 output
        bool sixteen = Autocast16(x) && weight is not { DType: not DType.Float32 } && bias is not { DType: not DType.Float32 };
        if (!sixteen && AutocastWidens(x, weight, bias))
            return Widening([x, weight, bias], wide => LayerNorm(wide[0]!, normalizedShape, wide[1], wide[2], eps, outputType));
        const string op = "layer_norm";
        if (outputType is { } t && t != DType.Float32 && !t.Is16Bit())
            throw new ArgumentException($"{op}: outputType must be Float32, BFloat16 or Float16, got {t}.", nameof(outputType));
        CheckFloatOrAutocast16(op, x, sixteen);
        ArgumentNullException.ThrowIfNull(normalizedShape);
        var ns = new Shape(normalizedShape);
        if (ns.Rank == 0 || ns.Rank > x.Rank || !x.Shape.Dims[(x.Rank - ns.Rank)..].SequenceEqual(ns.Dims))
            throw new ShapeMismatchException(
                $"{op}: normalizedShape {ns} must be the trailing dims of the input {x.Shape} " +
                $"(for example [{(x.Rank > 0 ? x.Shape[x.Rank - 1] : 0)}] to normalize over the last axis).");
        if (ns.Numel == 0) throw new ShapeMismatchException($"{op}: normalizedShape {ns} is empty; there is nothing to normalize over.");
        if (!(eps > 0f)) throw new ArgumentOutOfRangeException(nameof(eps), $"{op}: eps must be > 0, got {eps}.");
        CheckNormParameter(op, x, weight, "weight", ns);
        CheckNormParameter(op, x, bias, "bias", ns);

        // Per-row statistics shaped like x with the normalized dims as 1 (one per row; SBP gathers them like x).
        var statShape = new Shape([.. x.Shape.Dims[..(x.Rank - ns.Rank)], .. Enumerable.Repeat(1, ns.Rank)]);
        using var mean = Tensor.Empty(op, statShape, x.Device);
        using var rstd = Tensor.Empty(op, statShape, x.Device);
        var y = Tensor.Empty(op, x.Shape, x.Device, outputType ?? DType.Float32);   // last: out of memory here frees the statistics
        x.Backend.LayerNormForward(x, weight, bias, eps, y, mean, rstd);

        int[] normalizedAxes = Enumerable.Range(x.Rank - ns.Rank, ns.Rank).ToArray();
        Tensor[] inputs = (weight, bias) switch
        {
            (null, null) => [x],
            (not null, null) => [x, weight],
            (null, not null) => [x, bias],
            _ => [x, weight, bias],
        };
        int wi = weight is null ? -1 : 1, bi = bias is null ? -1 : (weight is null ? 1 : 2);
        // Only the bias trains (x and the weight are constants): dbias is a column sum of the gradient
        // and nothing needs saving.
        if (!x.RequiresGrad && weight is not { RequiresGrad: true })
        {
            int[] rowAxes = Enumerable.Range(0, x.Rank - ns.Rank).ToArray();
            return Tape.Record(op, y, inputs, [], ctx =>
                NormGradArray(inputs.Length, null, wi, null, bi, BiasOnlyGrad(ctx, bi, rowAxes)), SbpRule.RowWise(normalizedAxes, 1, 2));
        }
        return Tape.Record(op, y, inputs, [x, mean, rstd, weight is not null && x.RequiresGrad ? weight : null], ctx =>
        {
            var (dx, dw, db) = NormGrads(op, ctx, wi, bi);
            var w = wi > 0 && dx is not null ? ctx.Saved(3) : null;
            if (sixteen)
            {
                // the 16-bit input itself (the statistics are its own): read widened by the kernel
                ctx.Grad.Backend.LayerNormBackward(ctx.Grad, ctx.SavedAsHeld(0), w, ctx.Saved(1), ctx.Saved(2), dx, dw, db);
                return NormGradArray(inputs.Length, dx, wi, dw, bi, db);
            }
            var xs = ctx.Saved(0);
            if (!ctx.IsPacked(0))
            {
                ctx.Grad.Backend.LayerNormBackward(ctx.Grad, xs, w, ctx.Saved(1), ctx.Saved(2), dx, dw, db);
                return NormGradArray(inputs.Length, dx, wi, dw, bi, db);
            }
            // x was saved in 16 bits (Tape.SaveActivationsAs): statistics of the rounded x, so x - mean stays exact
            // (as a layer norm on a 16-bit input); the exact ones would not match the rounded x where |mean| >> std
            var stats = ctx.Saved(1).Shape;
            using var m = New(op + ".backward", stats, xs);
            using var r = New(op + ".backward", stats, xs);
            using (var scratch = New(op + ".backward", xs.Shape, xs)) xs.Backend.LayerNormForward(xs, null, null, eps, scratch, m, r);
            ctx.Grad.Backend.LayerNormBackward(ctx.Grad, xs, w, m, r, dx, dw, db);
            return NormGradArray(inputs.Length, dx, wi, dw, bi, db);
        }, SbpRule.RowWise(normalizedAxes, 1, 2));
    }

    /// <summary>
    /// The bias gradient of a normalization whose other inputs need none: the output gradient summed
    /// over <paramref name="axes"/> (none: the gradient itself); null when the bias needs no gradient.
    /// </summary>
    static Tensor? BiasOnlyGrad(BackwardContext ctx, int bi, int[] axes)
    {
        if (bi < 0 || !ctx.NeedsGrad(bi)) return null;
        return axes.Length == 0 ? ctx.Grad : Sum(ctx.Grad, axes);
    }

    /// <summary>Checks an optional per-feature parameter (weight, bias, running statistic) against its expected shape; <paramref name="why"/> ends the message (default: "to fit the input").</summary>
    static void CheckNormParameter(string op, Tensor x, Tensor? p, string role, Shape expected, string? why = null)
    {
        if (p is null) return;
        CheckFloat(op, p, role);
        CheckDevices(op, x, p);
        if (p.Shape != expected)
            throw new ShapeMismatchException($"{op}: {role} {p.Shape} must have shape {expected}{why ?? $" to fit the input {x.Shape}"}.");
    }
}
