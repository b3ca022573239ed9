using Sbp.Autograd;
using Sbp.Stochastic;
using Sbp.Tensors;

namespace Sbp;

// The adjoint pair of broadcasting: expand to a shape, and sum back down to it.
public static partial class Ops
{
    /// <summary>Copies x into a tensor of <paramref name="shape"/> by NumPy broadcasting. Backward: SumTo.</summary>
    public static Tensor BroadcastTo(Tensor x, Shape shape)
    {
        if (AutocastWidens(x)) return Widening([x], wide => BroadcastTo(wide[0]!, shape));
        CheckFloat("broadcast_to", x);
        if (!x.Shape.BroadcastsTo(shape))
            throw new ShapeMismatchException($"broadcast_to: shape {x.Shape} cannot be broadcast to {shape} (each dimension must be 1 or equal, aligned from the right).");
        var y = New("broadcast_to", shape, x);
        x.Backend.Copy(x, y);
        return Tape.Record("broadcast_to", y, [x], [], ctx => [GradTo(ctx.Grad, ctx.InputShape(0))], SbpRule.Elementwise);
    }

    /// <summary>
    /// Sums x down to <paramref name="shape"/>, which must broadcast to x's shape (the gradient of
    /// a broadcast). Backward: BroadcastTo.
    /// </summary>
    public static Tensor SumTo(Tensor x, Shape shape)
    {
        if (AutocastWidens(x)) return Widening([x], wide => SumTo(wide[0]!, shape));
        CheckFloat("sum_to", x);
        if (!shape.BroadcastsTo(x.Shape))
            throw new ShapeMismatchException($"sum_to: shape {x.Shape} cannot be summed down to {shape} ({shape} must broadcast to {x.Shape}).");
        // Reduce into the same-rank shape (leading 1s), then view it as the target shape.
        var keep = new int[x.Rank];
        for (int i = 0; i < x.Rank; i++) keep[i] = i < x.Rank - shape.Rank ? 1 : shape[i - (x.Rank - shape.Rank)];
        var y = New("sum_to", new Shape(keep), x);
        x.Backend.ReduceSum(x, y);
        Tensor result = y;
        if (shape.Rank != x.Rank)
        {
            result = y.View(shape);
            y.Dispose();
        }
        return Tape.Record("sum_to", result, [x], [], ctx => [BroadcastTo(ctx.Grad, ctx.InputShape(0))], SbpRule.Elementwise);
    }
}
