using Sbp.Autograd;
using Sbp.Stochastic;
using Sbp.Tensors;

namespace Sbp;

// Gather along a dimension and its adjoint, scatter-add: the pair SBP packs kept positions with.
public static partial class Ops
{
    static int CheckIndexArgs(string op, Tensor x, int dim, Tensor indices)
    {
        CheckFloat(op, x);
        CheckAlive(op, indices, "indices");
        if (indices.DType != DType.Int32 || indices.Rank != 1)
            throw new ArgumentException($"{op}: indices must be a 1-D Int32 tensor, got {indices.DType} {indices.Shape}.");
        CheckDevices(op, x, indices);
        return Shape.NormalizeAxis(dim, x.Rank, op);
    }

    /// <summary>
    /// Gather: y[..., i, ...] = x[..., indices[i], ...] along dim. Indices may repeat and be in any
    /// order. Backward: scatter-add of the gradient into zeros (repeated indices add up).
    /// </summary>
    public static Tensor IndexSelect(Tensor x, int dim, Tensor indices)
    {
        if (AutocastWidens(x, indices)) return Widening([x, indices], wide => IndexSelect(wide[0]!, dim, wide[1]!));
        int d = CheckIndexArgs("index_select", x, dim, indices);
        var y = New("index_select", x.Shape.With(d, (int)indices.Numel), x);
        RunOrDispose(y, () => x.Backend.IndexSelect(x, d, indices, y));
        return Tape.Record("index_select", y, [x], [indices], ctx =>
        {
            var dx = Tensor.Zeros(ctx.InputShape(0), ctx.Grad.Device);
            dx.Backend.IndexAdd(dx, d, ctx.Saved(0), ctx.Grad);
            return [dx];
        }, SbpRule.RowWise([d]));
    }

    /// <summary>
    /// Scatter-add: y = x with y[..., indices[i], ...] += source[..., i, ...] along dim.
    /// source has x's shape except along dim, where its size is the number of indices.
    /// Backward: dx = g, dsource = gather of g at the indices.
    /// </summary>
    public static Tensor IndexAdd(Tensor x, int dim, Tensor indices, Tensor source)
    {
        if (AutocastWidens(x, indices, source)) return Widening([x, indices, source], wide => IndexAdd(wide[0]!, dim, wide[1]!, wide[2]!));
        int d = CheckIndexArgs("index_add", x, dim, indices);
        CheckFloats("index_add", x, source);
        var expected = x.Shape.With(d, (int)indices.Numel);
        if (source.Shape != expected)
            throw new ShapeMismatchException($"index_add: source {source.Shape} must be {expected} (x {x.Shape} with dimension {d} = {indices.Numel} indices).");
        var y = New("index_add", x.Shape, x);
        RunOrDispose(y, () =>
        {
            y.Backend.Copy(x, y);
            y.Backend.IndexAdd(y, d, indices, source);
        });
        return Tape.Record("index_add", y, [x, source], [indices], ctx =>
        [
            ctx.NeedsGrad(0) ? ctx.Grad : null,
            ctx.NeedsGrad(1) ? IndexSelect(ctx.Grad, d, ctx.Saved(0)) : null,
        ], SbpRule.RowWise([d]));
    }
}
