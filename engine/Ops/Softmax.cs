using Sbp.Autograd;
using Sbp.Stochastic;
using Sbp.Tensors;

namespace Sbp;

// Softmax and log-softmax along a dimension; both save only their output.
public static partial class Ops
{
    /// <summary>softmax(x) along dim (max-subtracted). Backward: y * (g - sum(g * y)).</summary>
    public static Tensor Softmax(Tensor x, int dim = -1)
    {
        if (AutocastWidens(x)) return Widening([x], wide => Softmax(wide[0]!, dim));
        return SoftmaxOp("softmax", x, dim, log: false);
    }

    /// <summary>log(softmax(x)) along dim, computed stably. Backward: g - exp(y) * sum(g).</summary>
    public static Tensor LogSoftmax(Tensor x, int dim = -1)
    {
        if (AutocastWidens(x)) return Widening([x], wide => LogSoftmax(wide[0]!, dim));
        return SoftmaxOp("log_softmax", x, dim, log: true);
    }

    static Tensor SoftmaxOp(string op, Tensor x, int dim, bool log)
    {
        CheckFloat(op, x);
        int d = Shape.NormalizeAxis(dim, x.Rank, op);
        var y = New(op, x.Shape, x);
        x.Backend.Softmax(x, y, d, log);
        return Tape.Record(op, y, [x], [y], ctx =>
        {
            var dx = New(op + ".backward", ctx.Grad.Shape, ctx.Grad);
            dx.Backend.SoftmaxBackward(ctx.Saved(0), ctx.Grad, dx, d, log);
            return [dx];
        }, SbpRule.RowWise([d]));
    }
}
