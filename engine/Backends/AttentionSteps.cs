using Sbp.Tensors;

namespace Sbp.Backends;

/// <summary>
/// Attention's forward from a backend's general kernels: one batched GEMM for the scores, the bias and
/// mask added over the whole score tensor, a softmax, a batched GEMM for the output. The default of
/// <see cref="IBackend.AttentionForward"/>, and the CPU's path for bias or mask shapes its fused loop does not take.
/// </summary>
public static class AttentionSteps
{
    public static void Forward(IBackend backend, in AttentionSpec s, Tensor q, Tensor k, Tensor v, Tensor? bias, Tensor? mask, Tensor probs, Tensor output)
    {
        int n = s.N, m = s.M, d = s.D, dv = s.Dv, batch = s.Entries;
        using var logits = Tensor.Empty(s.Scores, probs.Device);
        logits.DetachFromScope();
        backend.Gemm(new GemmSpec(false, true, n, m, d, batch, (long)n * d, (long)m * d, (long)n * m, Alpha: s.Scale), q, k, logits);
        if (bias is not null) backend.Binary(BinaryOp.Add, logits, bias, logits);
        if (mask is not null)
        {
            if (!s.WindowMask) backend.Binary(BinaryOp.Add, logits, mask, logits);
            else
            {
                using var windows = logits.View(new Shape(s.B / mask.Shape[0], mask.Shape[0], s.H, n, m));
                backend.Binary(BinaryOp.Add, windows, mask, windows);
            }
        }
        backend.Softmax(logits, probs, 3, log: false);
        backend.Gemm(new GemmSpec(false, false, n, dv, m, batch, (long)n * m, (long)m * dv, (long)n * dv), probs, v, output);
    }
}
