using Sbp.Autograd;
using Sbp.Stochastic;
using Sbp.Tensors;

namespace Sbp;

// Casts between the floating types: Float32 and the 16-bit storage types.
public static partial class Ops
{
    /// <summary>
    /// x converted to <paramref name="dtype"/> (Float32, BFloat16 or Float16), rounding to nearest even with NaN kept
    /// (<see cref="HalfPrecision"/>); x itself when it already has that type. Backward: the gradient cast back to x's
    /// type (rounded for a 16-bit x, as PyTorch's; summed in Float32 afterwards, see <see cref="Autocast"/>). Position-wise inside an SBP region.
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
        var y = Tape.Record(op, CastTo(op, x, dtype), [x], [], ctx =>
            [ctx.Grad.DType == from ? CopyOf(op + ".backward", ctx.Grad) : CastTo(op + ".backward", ctx.Grad, from)],
            SbpRule.Elementwise);
        if (from.Is16Bit() && dtype == DType.Float32) Tape.NoteExactWidening(x, y);
        return y;
    }

    /// <summary>A new tensor (labelled <paramref name="label"/>) with x's values; not recorded.</summary>
    static Tensor CopyOf(string label, Tensor x)
    {
        var y = Tensor.Empty(label, x.Shape, x.Device, x.DType);
        y.Backend.Copy(x, y);
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
