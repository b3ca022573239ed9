using Sbp.Tensors;

namespace Sbp.Backends;

// Attention's forward and backward as backend calls, so that a backend can run them entry by entry
// with the scores still in cache (the CPU), or as whole-tensor GEMMs and passes (the default).
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

    /// <summary>
    /// The softmax step of <see cref="AttentionSteps"/>: probs = softmax(logits + bias + mask) along the last axis of the
    /// scores [B, H, N, M] (logits is scratch: it may be left holding the sum), and <paramref name="probs16"/>, when given, the probabilities
    /// rounded to its 16-bit type. bias and mask as in <see cref="AttentionForward"/>. The default is one pass per step.
    /// </summary>
    void AttentionSoftmax(in AttentionSpec spec, Tensor logits, Tensor? bias, Tensor? mask, Tensor probs, Tensor? probs16) =>
        AttentionSteps.Softmax(this, spec, logits, bias, mask, probs, probs16);

    /// <summary>
    /// Attention's gradients from the saved probabilities P and the output gradient g ([B, H, N, Dv]; N the
    /// query rows the gradient has, compact inside an SBP region): dv = P^T g, dS = P (g v^T - rowsum(g v^T P)),
    /// dq = scale dS k, dk = scale dS^T q, and dS itself into <paramref name="dScores"/> (the bias gradient
    /// sums it). A null output is not computed; q is needed for dk, k for dq, v for dq, dk or dScores. The
    /// mask of <paramref name="spec"/> is not used.
    /// </summary>
    void AttentionBackward(in AttentionSpec spec, Tensor probs, Tensor grad, Tensor? q, Tensor? k, Tensor? v,
        Tensor? dq, Tensor? dk, Tensor? dv, Tensor? dScores) =>
        AttentionSteps.Backward(this, spec, probs, grad, q, k, v, dq, dk, dv, dScores);
}
