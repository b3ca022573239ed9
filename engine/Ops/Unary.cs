using Sbp.Autograd;
using Sbp.Backends;
using Sbp.Stochastic;
using Sbp.Tensors;

namespace Sbp;

// Elementwise functions of one tensor.
public static partial class Ops
{
    /// <summary>e^x. Backward: g * y (saves the output).</summary>
    public static Tensor Exp(Tensor x)
    {
        if (AutocastWidens(x)) return Widening([x], wide => Exp(wide[0]!));
        var y = Scalar("exp", UnaryOp.Exp, x, 0f);
        return Tape.Record("exp", y, [x], [y], ctx => [Mul(ctx.Grad, ctx.Saved(0))], SbpRule.Elementwise);
    }

    /// <summary>Natural logarithm. Backward: g / x.</summary>
    public static Tensor Log(Tensor x)
    {
        if (AutocastWidens(x)) return Widening([x], wide => Log(wide[0]!));
        return Tape.Record("log", Scalar("log", UnaryOp.Log, x, 0f), [x], [x], ctx => [Div(ctx.Grad, ctx.Saved(0))], SbpRule.Elementwise);
    }

    /// <summary>Square root. Backward: g / (2 y) (saves the output).</summary>
    public static Tensor Sqrt(Tensor x)
    {
        if (AutocastWidens(x)) return Widening([x], wide => Sqrt(wide[0]!));
        var y = Scalar("sqrt", UnaryOp.Sqrt, x, 0f);
        return Tape.Record("sqrt", y, [x], [y], ctx => [Div(Mul(ctx.Grad, 0.5f), ctx.Saved(0))], SbpRule.Elementwise);
    }

    /// <summary>x ^ p. Backward: g * p * x^(p-1).</summary>
    public static Tensor Pow(Tensor x, float p)
    {
        if (AutocastWidens(x)) return Widening([x], wide => Pow(wide[0]!, p));
        return Tape.Record("pow_scalar", Scalar("pow_scalar", UnaryOp.PowScalar, x, p), [x], [x], ctx =>
            [Mul(ctx.Grad, Mul(Pow(ctx.Saved(0), p - 1f), p))], SbpRule.Elementwise);
    }

    /// <summary>
    /// max(x, 0). Backward: g where x &gt; 0, else 0. Under autocast a 16-bit x gives a 16-bit output (exact; PyTorch runs
    /// ReLU in its input's type): a convolution's 16-bit output reaches the next one without a cast either side.
    /// </summary>
    public static Tensor Relu(Tensor x)
    {
        return Activation("relu", UnaryOp.Relu, x);
    }

    /// <summary>
    /// GELU, x * Phi(x): the exact erf form by default, or the tanh approximation
    /// (<paramref name="tanhApproximation"/>, as GPT-2 and PyTorch's approximate="tanh"). Under autocast a 16-bit x gives a
    /// 16-bit output, computed in Float32 and rounded once (PyTorch runs GELU in its input's type).
    /// </summary>
    public static Tensor Gelu(Tensor x, bool tanhApproximation = false)
    {
        return tanhApproximation ? Activation("gelu_tanh", UnaryOp.GeluTanh, x) : Activation("gelu", UnaryOp.Gelu, x);
    }

    /// <summary>
    /// gelu(x + bias) for x [..., C] and bias [C]: a linear layer's bias and its GELU in one pass (the
    /// sum is never stored; backward recomputes it row by row). Same values and gradients as
    /// Gelu(x + bias). Saves x (and references bias); db is dx summed over the rows.
    /// <para>Under autocast a 16-bit x (a linear layer's output) with a Float32 bias gives a 16-bit output, computed in
    /// Float32 and rounded once, as PyTorch runs GELU in its input's type: the MLP's next linear reads it as it is, and no
    /// cast pass is made either side (the backend converts where it reads and writes).</para>
    /// </summary>
    public static Tensor BiasGelu(Tensor x, Tensor bias, bool tanhApproximation = false)
    {
        string op = tanhApproximation ? "bias_gelu_tanh" : "bias_gelu";
        bool sixteen = Autocast16(x) && bias is { IsDisposed: false, DType: DType.Float32 };
        if (!sixteen && AutocastWidens(x, bias)) return Widening([x, bias], wide => BiasGelu(wide[0]!, wide[1]!, tanhApproximation));
        var kind = tanhApproximation ? UnaryOp.GeluTanh : UnaryOp.Gelu;
        if (!sixteen) CheckFloats(op, x, bias);
        else CheckDevices(op, x, bias);
        if (x.Rank == 0 || bias.Rank != 1 || bias.Shape[0] != x.Shape[-1])
            throw new ShapeMismatchException($"{op}: bias {bias.Shape} must be [C] with C = the input's last dimension ({(x.Rank == 0 ? "none: the input is a scalar" : x.Shape[-1].ToString())}), input {x.Shape}.");
        var y = NewOfType(op, x.Shape, x);
        y.Backend.BiasActivation(kind, x, bias, y);
        return Tape.Record(op, y, [x, bias], [x, bias], ctx =>
        {
            var dx = New(op + ".backward", ctx.Grad.Shape, ctx.Grad);     // compact inside an SBP region
            dx.Backend.BiasActivationBackward(kind, ctx.SavedAsHeld(0), ctx.Saved(1), ctx.Grad, dx);   // a 16-bit x read as it is
            var db = ctx.NeedsGrad(1) ? SumTo(dx, ctx.InputShape(1)) : null;
            if (!ctx.NeedsGrad(0))
            {
                dx.Dispose();
                dx = null;
            }
            return [dx, db];
        }, SbpRule.RowWise([], 1));
    }

    /// <summary>
    /// An activation whose backward is one fused kernel, dx = dy * f'(x); saves its input. Under autocast a 16-bit x gives an
    /// output of its type (computed in Float32, rounded once); outside it Scalar refuses one. A 16-bit saved x (that, or
    /// SaveActivationsAs) is read as it is, widened by the backend.
    /// </summary>
    static Tensor Activation(string op, UnaryOp kind, Tensor x)
    {
        Tensor y;
        if (Autocast16(x))
        {
            y = NewOfType(op, x.Shape, x);
            x.Backend.Unary(kind, x, y);
        }
        else y = Scalar(op, kind, x, 0f);
        return Tape.Record(op, y, [x], [x], ctx =>
        {
            var dx = New(op + ".backward", ctx.Grad.Shape, ctx.Grad);
            dx.Backend.ActivationBackward(kind, ctx.SavedAsHeld(0), ctx.Grad, dx);
            return [dx];
        }, SbpRule.Elementwise);
    }
}
