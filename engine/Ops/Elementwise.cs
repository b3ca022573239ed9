using Sbp.Autograd;
using Sbp.Backends;
using Sbp.Stochastic;
using Sbp.Tensors;

namespace Sbp;

// Elementwise ops of two tensors with NumPy broadcasting, and their scalar forms.
public static partial class Ops
{
    static Tensor Binary(string op, BinaryOp kind, Tensor a, Tensor b)
    {
        if (Promotes(a, b)) CheckDevices(op, a, b);
        else CheckFloats(op, a, b);
        var c = Tensor.Empty(op, Shape.Broadcast(a.Shape, b.Shape, op), a.Device);
        a.Backend.Binary(kind, a, b, c);
        return c;
    }

    /// <summary>
    /// Autocast's promote rule without a cast pass: a 16-bit operand of the output's shape beside a Float32 one (a block's
    /// residual add of its 16-bit branch, drop path's Float32 mask) gives a Float32 output, the backend reading the 16-bit
    /// operand widened where it reads it: the bits of widening it first. Other 16-bit mixes go through <see cref="Widening"/>.
    /// </summary>
    static bool Promotes(Tensor a, Tensor b)
    {
        if (Autocast.Type is null || a.IsDisposed || b.IsDisposed || a.DType.Is16Bit() == b.DType.Is16Bit()) return false;
        var (low, other) = a.DType.Is16Bit() ? (a, b) : (b, a);
        return other.DType == DType.Float32 && other.Shape.BroadcastsTo(low.Shape);
    }

    /// <summary>a + b. Backward: the gradient, summed over broadcast axes.</summary>
    public static Tensor Add(Tensor a, Tensor b)
    {
        if (AutocastWidens(a, b) && !Promotes(a, b)) return Widening([a, b], wide => Add(wide[0]!, wide[1]!));
        return Tape.Record("add", Binary("add", BinaryOp.Add, a, b), [a, b], [], ctx =>
        [
            ctx.NeedsGrad(0) ? GradTo(ctx.Grad, ctx.InputShape(0)) : null,
            ctx.NeedsGrad(1) ? GradTo(ctx.Grad, ctx.InputShape(1)) : null,
        ], SbpRule.Elementwise);
    }

    /// <summary>a - b.</summary>
    public static Tensor Sub(Tensor a, Tensor b)
    {
        if (AutocastWidens(a, b) && !Promotes(a, b)) return Widening([a, b], wide => Sub(wide[0]!, wide[1]!));
        return Tape.Record("sub", Binary("sub", BinaryOp.Sub, a, b), [a, b], [], ctx =>
        [
            ctx.NeedsGrad(0) ? GradTo(ctx.Grad, ctx.InputShape(0)) : null,
            ctx.NeedsGrad(1) ? GradTo(Neg(ctx.Grad), ctx.InputShape(1)) : null,
        ], SbpRule.Elementwise);
    }

    /// <summary>a * b. Saves each operand only if the other one needs its gradient.</summary>
    public static Tensor Mul(Tensor a, Tensor b)
    {
        if (AutocastWidens(a, b) && !Promotes(a, b)) return Widening([a, b], wide => Mul(wide[0]!, wide[1]!));
        return Tape.Record("mul", Binary("mul", BinaryOp.Mul, a, b), [a, b], [b.RequiresGrad ? a : null, a.RequiresGrad ? b : null], ctx =>
        [
            ctx.NeedsGrad(0) ? GradTo(Mul(ctx.Grad, ctx.Saved(1)), ctx.InputShape(0)) : null,
            ctx.NeedsGrad(1) ? GradTo(Mul(ctx.Grad, ctx.Saved(0)), ctx.InputShape(1)) : null,
        ], SbpRule.Elementwise);
    }

    /// <summary>a / b. Backward: g / b and -g * a / b^2.</summary>
    public static Tensor Div(Tensor a, Tensor b)
    {
        if (AutocastWidens(a, b) && !Promotes(a, b)) return Widening([a, b], wide => Div(wide[0]!, wide[1]!));
        return Tape.Record("div", Binary("div", BinaryOp.Div, a, b), [a, b], [b.RequiresGrad ? a : null, b], ctx =>
        [
            ctx.NeedsGrad(0) ? GradTo(Div(ctx.Grad, ctx.Saved(1)), ctx.InputShape(0)) : null,
            ctx.NeedsGrad(1) ? GradTo(Neg(Div(Mul(ctx.Grad, ctx.Saved(0)), Mul(ctx.Saved(1), ctx.Saved(1)))), ctx.InputShape(1)) : null,
        ], SbpRule.Elementwise);
    }

    /// <summary>a ^ b elementwise. Backward: g * b * a^(b-1) and g * a^b * log(a).</summary>
    public static Tensor Pow(Tensor a, Tensor b)
    {
        if (AutocastWidens(a, b)) return Widening([a, b], wide => Pow(wide[0]!, wide[1]!));
        var c = Binary("pow", BinaryOp.Pow, a, b);
        return Tape.Record("pow", c, [a, b], [a, b, b.RequiresGrad ? c : null], ctx =>
        [
            ctx.NeedsGrad(0) ? GradTo(Mul(ctx.Grad, Mul(ctx.Saved(1), Pow(ctx.Saved(0), Sub(ctx.Saved(1), 1f)))), ctx.InputShape(0)) : null,
            ctx.NeedsGrad(1) ? GradTo(Mul(ctx.Grad, Mul(ctx.Saved(2), Log(ctx.Saved(0)))), ctx.InputShape(1)) : null,
        ], SbpRule.Elementwise);
    }

    static Tensor Scalar(string op, UnaryOp kind, Tensor x, float alpha)
    {
        CheckFloat(op, x);
        var y = New(op, x.Shape, x);
        x.Backend.Unary(kind, x, y, alpha);
        return y;
    }

    /// <summary>x + s.</summary>
    public static Tensor Add(Tensor x, float s)
    {
        if (AutocastWidens(x)) return Widening([x], wide => Add(wide[0]!, s));
        return Tape.Record("add_scalar", Scalar("add_scalar", UnaryOp.AddScalar, x, s), [x], [], ctx => [ctx.Grad], SbpRule.Elementwise);
    }

    /// <summary>x - s.</summary>
    public static Tensor Sub(Tensor x, float s) => Add(x, -s);

    /// <summary>s - x.</summary>
    public static Tensor Sub(float s, Tensor x)
    {
        if (AutocastWidens(x)) return Widening([x], wide => Sub(s, wide[0]!));
        return Tape.Record("rsub_scalar", Scalar("rsub_scalar", UnaryOp.RSubScalar, x, s), [x], [], ctx => [Neg(ctx.Grad)], SbpRule.Elementwise);
    }

    /// <summary>x * s.</summary>
    public static Tensor Mul(Tensor x, float s)
    {
        if (AutocastWidens(x)) return Widening([x], wide => Mul(wide[0]!, s));
        return Tape.Record("mul_scalar", Scalar("mul_scalar", UnaryOp.MulScalar, x, s), [x], [], ctx => [Mul(ctx.Grad, s)], SbpRule.Elementwise);
    }

    /// <summary>x / s (as x * (1/s)).</summary>
    public static Tensor Div(Tensor x, float s) => Mul(x, 1f / s);

    /// <summary>s / x. Backward: -g * s / x^2 = -g * y / x.</summary>
    public static Tensor Div(float s, Tensor x)
    {
        if (AutocastWidens(x)) return Widening([x], wide => Div(s, wide[0]!));
        var y = Scalar("rdiv_scalar", UnaryOp.RDivScalar, x, s);
        return Tape.Record("rdiv_scalar", y, [x], [x, y], ctx => [Neg(Div(Mul(ctx.Grad, ctx.Saved(1)), ctx.Saved(0)))], SbpRule.Elementwise);
    }

    /// <summary>-x.</summary>
    public static Tensor Neg(Tensor x)
    {
        if (AutocastWidens(x)) return Widening([x], wide => Neg(wide[0]!));
        return Tape.Record("neg", Scalar("neg", UnaryOp.Neg, x, 0f), [x], [], ctx => [Neg(ctx.Grad)], SbpRule.Elementwise);
    }
}
