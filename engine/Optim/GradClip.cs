using Sbp.Autograd;
using Sbp.Backends;
using Sbp.Tensors;

namespace Sbp.Optim;

/// <summary>Gradient clipping (PyTorch's torch.nn.utils.clip_grad_norm_ with the 2-norm).</summary>
public static class GradClip
{
    /// <summary>
    /// The global 2-norm of the gradients of <paramref name="parameters"/> (those with a null Grad
    /// are skipped): sqrt of the float64 sum of per-tensor float64 sums of squares. When
    /// coef = maxNorm / (norm + 1e-6) is below 1, every gradient is multiplied in place by (float)coef.
    /// Returns the norm before clipping. A non-finite norm throws when
    /// <paramref name="errorIfNonfinite"/> (nothing is scaled), else scales like PyTorch.
    /// </summary>
    public static float ClipByGlobalNorm(IEnumerable<Tensor> parameters, float maxNorm, bool errorIfNonfinite = false)
    {
        if (!(maxNorm >= 0f)) throw new ArgumentOutOfRangeException(nameof(maxNorm), $"GradClip.ClipByGlobalNorm: maxNorm must be >= 0, got {maxNorm}.");
        var grads = parameters.Select(p => p.Grad).OfType<Tensor>().ToList();
        double sum = 0;
        foreach (var g in grads) sum += g.Backend.SumOfSquares(g);
        double norm = Math.Sqrt(sum);
        if (!double.IsFinite(norm) && errorIfNonfinite)
            throw new InvalidOperationException($"GradClip.ClipByGlobalNorm: the total gradient norm is {norm} (a gradient holds NaN or infinity); nothing was scaled.");
        double coef = maxNorm / (norm + 1e-6);
        if (coef < 1.0 || double.IsNaN(coef))
            using (Tape.NoGrad())
                foreach (var g in grads) g.Backend.Unary(UnaryOp.MulScalar, g, g, (float)coef);
        return (float)norm;
    }

    /// <summary>As the other overload, over named parameters.</summary>
    public static float ClipByGlobalNorm(IEnumerable<(string Name, Tensor Tensor)> parameters, float maxNorm, bool errorIfNonfinite = false) =>
        ClipByGlobalNorm(parameters.Select(p => p.Tensor), maxNorm, errorIfNonfinite);

    /// <summary>The global 2-norm of the gradients without changing them (float64 accumulation).</summary>
    public static double GlobalNorm(IEnumerable<Tensor> parameters)
    {
        double sum = 0;
        foreach (var p in parameters) if (p.Grad is { } g) sum += g.Backend.SumOfSquares(g);
        return Math.Sqrt(sum);
    }
}
