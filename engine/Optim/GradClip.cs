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
        if (!errorIfNonfinite)
        {
            using var total = Clip(parameters, maxNorm);
            return total.Item();
        }
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

    /// <summary>
    /// As <see cref="ClipByGlobalNorm(IEnumerable{Tensor}, float, bool)"/> without waiting for the device: the norm comes
    /// back as a one-element tensor on the gradients' device (the caller disposes it; reading it waits), and the scaling is
    /// queued behind it. A training step on a GPU clips with this, so the host never stalls the launch queue.
    /// </summary>
    public static Tensor Clip(IEnumerable<Tensor> parameters, float maxNorm)
    {
        if (!(maxNorm >= 0f)) throw new ArgumentOutOfRangeException(nameof(maxNorm), $"GradClip.Clip: maxNorm must be >= 0, got {maxNorm}.");
        var grads = parameters.Select(p => p.Grad).OfType<Tensor>().ToList();
        var device = grads.Count > 0 ? grads[0].Device : parameters.Select(p => p.Device).FirstOrDefault() ?? Device.Cpu;
        if (grads.FirstOrDefault(g => g.Device != device) is { } other)
            throw new ArgumentException($"GradClip.Clip: gradients on '{device}' and '{other.Device}'; clip each device's gradients separately.", nameof(parameters));
        var norm = Tensor.Zeros(new Shape(1), device);
        using (Tape.NoGrad()) device.Backend.ClipGradNorm(grads, maxNorm, norm);
        return norm;
    }

    /// <summary>As <see cref="Clip(IEnumerable{Tensor}, float)"/>, over named parameters.</summary>
    public static Tensor Clip(IEnumerable<(string Name, Tensor Tensor)> parameters, float maxNorm) => Clip(parameters.Select(p => p.Tensor), maxNorm);

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
