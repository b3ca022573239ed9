using Sbp.Tensors;

namespace Sbp.Backends;

// Fused loss kernels (one GPU kernel each). Callers validate shapes and target ranges.
public partial interface IBackend
{
    /// <summary>
    /// Cross-entropy per row of logits z [N, C] with Int32 targets y [N] (each in 0..C-1):
    /// lse[i] = log sum_c exp(z[i,c]) and loss[i] = sum_c q[i,c] (lse[i] - z[i,c]), where
    /// q[i,c] = (1 - eps) w[y_i] [c == y_i] + eps / C w[c] (PyTorch's label smoothing with class
    /// weights; w = 1 when <paramref name="classWeights"/> [C] is null). losses and logSumExp are [N]. Under autocast the
    /// logits may be 16-bit (read as their exact widening; here and in the backward).
    /// </summary>
    void CrossEntropyForward(Tensor logits, Tensor targets, Tensor? classWeights, float labelSmoothing, Tensor losses, Tensor logSumExp);

    /// <summary>
    /// dz[i,c] = g_i (p[i,c] sum_c' q[i,c'] - q[i,c]) with p = exp(z - lse) and q as in the forward;
    /// g_i = rowGrad[i] when rowGrad has N elements, else its single element for every row.
    /// </summary>
    void CrossEntropyBackward(Tensor logits, Tensor targets, Tensor? classWeights, float labelSmoothing, Tensor logSumExp, Tensor rowGrad, Tensor dLogits);

    /// <summary>
    /// Binary cross-entropy with logits, elementwise and numerically stable:
    /// loss = (1 - t) x + l (log(1 + exp(-|x|)) + max(-x, 0)), l = 1 + (pw - 1) t, where pw is
    /// posWeight[j] for the element's last-axis index j (posWeight has last-dim or one element;
    /// pw = 1 when null). This is max(x, 0) - x t + log(1 + exp(-|x|)) when pw = 1.
    /// </summary>
    void BceWithLogitsForward(Tensor logits, Tensor targets, Tensor? posWeight, Tensor losses);

    /// <summary>
    /// Gradients of <see cref="BceWithLogitsForward"/> times g (grad elementwise, or its single
    /// element broadcast): dx = g ((1 - t) - l sigmoid(-x)), dt = g ((pw - 1) softplus(-x) - x).
    /// Either output may be null (not needed).
    /// </summary>
    void BceWithLogitsBackward(Tensor logits, Tensor targets, Tensor? posWeight, Tensor grad, Tensor? dLogits, Tensor? dTargets);
}
