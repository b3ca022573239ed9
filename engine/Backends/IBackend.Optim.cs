using Sbp.Tensors;

namespace Sbp.Backends;

/// <summary>
/// Scalars of one SGD update (PyTorch's torch.optim.SGD, one parameter tensor):
/// d = g + WeightDecay * p; with a momentum buffer b: b = d on the first step, else
/// b = Momentum * b + (1 - Dampening) * d, then d = Nesterov ? d + Momentum * b : b;
/// finally p = p - LearningRate * d.
/// </summary>
public readonly record struct SgdUpdateSpec(float LearningRate, float Momentum, float Dampening, bool Nesterov, float WeightDecay, bool FirstStep);

/// <summary>
/// Scalars of one AdamW update (PyTorch's torch.optim.AdamW, amsgrad off), for the parameter's
/// <see cref="Step"/>-th update (1-based). The bias corrections are computed here in float64 on the
/// host, so every backend uses the same values.
/// </summary>
public readonly record struct AdamWUpdateSpec(float LearningRate, float Beta1, float Beta2, float Eps, float WeightDecay, long Step)
{
    /// <summary>1 - lr * weight decay: the decoupled decay factor applied to p first.</summary>
    public float DecayFactor => (float)(1.0 - (double)LearningRate * WeightDecay);

    /// <summary>lr / (1 - beta1^step).</summary>
    public float StepSize => (float)(LearningRate / (1.0 - Math.Pow(Beta1, Step)));

    /// <summary>sqrt(1 - beta2^step).</summary>
    public float BiasCorrection2Sqrt => (float)Math.Sqrt(1.0 - Math.Pow(Beta2, Step));
}

// Optimizer update kernels (one GPU kernel each) and the reduction used by gradient clipping.
public partial interface IBackend
{
    /// <summary>
    /// In place, per element, as <see cref="SgdUpdateSpec"/> describes: updates param and (when not
    /// null) momentumBuffer from grad. All three have the same shape; grad is not modified.
    /// </summary>
    void SgdUpdate(in SgdUpdateSpec spec, Tensor param, Tensor grad, Tensor? momentumBuffer);

    /// <summary>
    /// In place, per element: p *= DecayFactor; m = m + (1 - beta1) (g - m);
    /// v = beta2 v + (1 - beta2) g^2; p -= StepSize * m / (sqrt(v) / BiasCorrection2Sqrt + eps).
    /// param, grad, expAvg (m) and expAvgSq (v) have the same shape; grad is not modified.
    /// </summary>
    void AdamWUpdate(in AdamWUpdateSpec spec, Tensor param, Tensor grad, Tensor expAvg, Tensor expAvgSq);

    /// <summary>
    /// The sum of squares of a Float32 tensor accumulated in float64, returned to the host.
    /// Deterministic: the partial sums are combined in a fixed order independent of threading.
    /// </summary>
    double SumOfSquares(Tensor x);

    /// <summary>
    /// Gradient clipping by the global 2-norm without the host (PyTorch's clip_grad_norm_): writes the norm of all of
    /// <paramref name="grads"/> into <paramref name="norm"/> (one element) and multiplies every gradient in place by
    /// min(1, maxNorm / (norm + 1e-6)) (by NaN when the norm is NaN or infinite, as PyTorch). A GPU queues it all and
    /// never waits; reading <paramref name="norm"/> does.
    /// </summary>
    void ClipGradNorm(IReadOnlyList<Tensor> grads, float maxNorm, Tensor norm);
}
