using Sbp.Autograd;
using Sbp.Stochastic;
using Sbp.Tensors;

namespace Sbp;

// The SBP oracle (docs/SBP.md section 1): identity forward, gradient times the keep mask backward.
public static partial class Ops
{
    /// <summary>
    /// Returns x unchanged (a view); in backward multiplies the gradient by <paramref name="mask"/>
    /// along <paramref name="dim"/>, zeroing dropped positions (and by <paramref name="scale"/>, the
    /// optional 1/keep rescale). SBP gradients must equal ordinary backprop with this op at each
    /// region output.
    /// </summary>
    public static Tensor GradMask(Tensor x, int dim, KeepMask mask, float scale = 1f)
    {
        if (AutocastWidens(x)) return Widening([x], wide => GradMask(wide[0]!, dim, mask, scale));
        CheckFloat("grad_mask", x);
        int d = Shape.NormalizeAxis(dim, x.Rank, "grad_mask");
        if (x.Shape[d] != mask.Size)
            throw new ShapeMismatchException($"grad_mask: mask over {mask.Size} positions does not fit dimension {d} of {x.Shape} (size {x.Shape[d]}).");
        var maskShape = new int[x.Rank];
        Array.Fill(maskShape, 1);
        maskShape[d] = mask.Size;
        return Tape.Record("grad_mask", x.View(x.Shape), [x], [], ctx =>
        {
            using var m = Tensor.FromArray(mask.ToFloatArray().Select(v => v * scale).ToArray(), new Shape(maskShape), ctx.Grad.Device);
            return [Mul(ctx.Grad, m)];
        });
    }
}
