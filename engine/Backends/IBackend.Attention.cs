using Sbp.Tensors;

namespace Sbp.Backends;

// Attention's forward as one backend call, so that a backend can run it entry by entry with the
// scores still in cache (the CPU), or as whole-tensor GEMMs and passes (the default).
public partial interface IBackend
{
    /// <summary>
    /// probs = softmax(scale q k^T + bias + mask) along the last axis and output = probs v, for every
    /// (batch, head) entry of <paramref name="spec"/>. bias and mask are optional and broadcast to the
    /// scores, or the mask is a window mask (<see cref="AttentionSpec.WindowMask"/>). probs and output
    /// are overwritten.
    /// </summary>
    void AttentionForward(in AttentionSpec spec, Tensor q, Tensor k, Tensor v, Tensor? bias, Tensor? mask, Tensor probs, Tensor output) =>
        AttentionSteps.Forward(this, spec, q, k, v, bias, mask, probs, output);
}
