using Sbp.Autograd;
using Sbp.Stochastic;
using Sbp.Tensors;

namespace Sbp;

// Casts between the floating types: Float32 and the 16-bit storage types.
public static partial class Ops
{
    /// <summary>
    /// x converted to <paramref name="dtype"/> (Float32, BFloat16 or Float16), rounding to nearest even with NaN kept
    /// (<see cref="HalfPrecision"/>); x itself when it already has that type. Backward: the gradient as it is, in Float32
    /// whatever x's type (gradients of 16-bit tensors are kept and summed in Float32, not rounded as PyTorch's; see
    /// <see cref="Autocast"/>). Position-wise inside an SBP region.
    /// A widening of a 16-bit tensor is exact: an op that saves it holds the 16-bit tensor instead.
    /// </summary>
    public static Tensor To(Tensor x, DType dtype)
    {
        const string op = "to";
        CheckAlive(op, x, "input");
        if (!x.DType.IsFloating() || !dtype.IsFloating())
            throw new ArgumentException($"{op}: casts convert between Float32, BFloat16 and Float16; got {x.DType} {x.Shape} to {dtype}.");
        if (x.DType == dtype) return x;
        var from = x.DType;
        // Gradients stay Float32 (summed in Float32, see Autocast): passed on as they are, whatever x's type.
        var y = Tape.Record(op, CastTo(op, x, dtype), [x], [], ctx =>
            [ctx.Grad.DType == DType.Float32 ? ctx.Grad.View(ctx.Grad.Shape) : CastTo(op + ".backward", ctx.Grad, DType.Float32)],
            SbpRule.Elementwise);
        if (from.Is16Bit() && dtype == DType.Float32) Tape.NoteExactWidening(x, y);
        return y;
    }

    /// <summary>A new tensor (labelled <paramref name="label"/>) holding x converted to <paramref name="dtype"/>; not recorded.</summary>
    internal static Tensor CastTo(string label, Tensor x, DType dtype)
    {
        var y = Tensor.Empty(label, x.Shape, x.Device, dtype);
        y.Backend.Cast(x, y);
        return y;
    }
}
