using Sbp.Tensors;

namespace Sbp.Backends;

/// <summary>
/// Attention from a backend's general kernels. Forward: one batched GEMM for the scores, the bias and
/// mask added over the whole score tensor, a softmax, a batched GEMM for the output; backward: batched
/// GEMMs around one softmax backward. The defaults of <see cref="IBackend.AttentionForward"/> and
/// <see cref="IBackend.AttentionBackward"/>, and the CPU's path for bias or mask shapes its fused loop does not take.
/// 16-bit q, k, v, bias or saved probabilities (autocast) are widened into Float32 temporaries first, and 16-bit probs
/// or output are computed in Float32 and rounded: the contract every backend keeps, whether or not it fuses the casts.
/// </summary>
public static class AttentionSteps
{
    public static void Forward(IBackend backend, in AttentionSpec s, Tensor q, Tensor k, Tensor v, Tensor? bias, Tensor? mask, Tensor probs, Tensor output)
    {
        if (!SixteenBitOperands.Any(q, k, v, bias, probs, output))
        {
            Compute(backend, s, q, k, v, bias, mask, probs, null, output);
            return;
        }
        // q and k of one 16-bit type go to the scores GEMM as they are (cuBLAS GemmEx: Float32 sums of exact products, as the
        // Float32 GEMM on their widenings); v is widened, as P v takes the Float32 P
        bool qk16 = q.DType.Is16Bit() && k.DType == q.DType;
        using var wq = qk16 ? null : SixteenBitOperands.Widened(backend, q);
        using var wk = qk16 ? null : SixteenBitOperands.Widened(backend, k);
        using var wv = SixteenBitOperands.Widened(backend, v);
        using var wb = SixteenBitOperands.Widened(backend, bias);
        // a 16-bit P: the Float32 P for P v, its rounded copy written by the softmax step
        using var p32 = SixteenBitOperands.Float32Like(probs);
        using var o32 = SixteenBitOperands.Float32Like(output);
        Compute(backend, s, wq ?? q, wk ?? k, wv ?? v, wb ?? bias, mask, p32 ?? probs, p32 is null ? null : probs, o32 ?? output);
        if (o32 is not null) backend.Cast(o32, output);
    }

    /// <summary>The forward on Float32 tensors, q and k possibly of one 16-bit type (the scores GEMM reads them).</summary>
    static void Compute(IBackend backend, in AttentionSpec s, Tensor q, Tensor k, Tensor v, Tensor? bias, Tensor? mask, Tensor probs, Tensor? probs16, Tensor output)
    {
        int n = s.N, m = s.M, d = s.D, dv = s.Dv, batch = s.Entries;
        using var logits = Tensor.Empty(s.Scores, probs.Device);
        logits.DetachFromScope();
        backend.Gemm(new GemmSpec(false, true, n, m, d, batch, (long)n * d, (long)m * d, (long)n * m, Alpha: s.Scale), q, k, logits);
        backend.AttentionSoftmax(s, logits, bias, mask, probs, probs16);
        backend.Gemm(new GemmSpec(false, false, n, dv, m, batch, (long)n * m, (long)m * dv, (long)n * dv), probs, v, output);
    }

    /// <summary>The default of <see cref="IBackend.AttentionSoftmax"/>: the bias and the mask added, the softmax, the rounding, one pass each.</summary>
    public static void Softmax(IBackend backend, in AttentionSpec s, Tensor logits, Tensor? bias, Tensor? mask, Tensor probs, Tensor? probs16)
    {
        if (bias is not null) backend.Binary(BinaryOp.Add, logits, bias, logits);
        if (mask is not null)
        {
            if (!s.WindowMask) backend.Binary(BinaryOp.Add, logits, mask, logits);
            else
            {
                using var windows = logits.View(new Shape(s.B / mask.Shape[0], mask.Shape[0], s.H, s.N, s.M));
                backend.Binary(BinaryOp.Add, windows, mask, windows);
            }
        }
        backend.Softmax(logits, probs, 3, log: false);
        if (probs16 is not null) backend.Cast(probs, probs16);
    }

    /// <summary>The default of <see cref="IBackend.AttentionBackward"/>: batched GEMMs and a softmax backward over whole tensors.</summary>
    public static void Backward(IBackend backend, in AttentionSpec s, Tensor probs, Tensor grad, Tensor? q, Tensor? k, Tensor? v,
        Tensor? dq, Tensor? dk, Tensor? dv, Tensor? dScores)
    {
        if (SixteenBitOperands.Any(probs, q, k, v))
        {
            using var wp = SixteenBitOperands.Widened(backend, probs);
            using var wq = SixteenBitOperands.Widened(backend, q);
            using var wk = SixteenBitOperands.Widened(backend, k);
            using var wv = SixteenBitOperands.Widened(backend, v);
            Backward(backend, s, wp ?? probs, grad, wq ?? q, wk ?? k, wv ?? v, dq, dk, dv, dScores);
            return;
        }
        int n = s.N, m = s.M, d = s.D, dvd = s.Dv, batch = s.Entries;
        if (dv is not null)
            backend.Gemm(new GemmSpec(true, false, m, dvd, n, batch, (long)n * m, (long)n * dvd, (long)m * dvd), probs, grad, dv);
        if (dq is null && dk is null && dScores is null) return;
        var ds = dScores ?? Tensor.Empty(s.Scores, probs.Device).DetachFromScope();
        try
        {
            using (var dp = Tensor.Empty(s.Scores, probs.Device).DetachFromScope())
            {
                backend.Gemm(new GemmSpec(false, true, n, m, dvd, batch, (long)n * dvd, (long)m * dvd, (long)n * m), grad, v!, dp);
                backend.SoftmaxBackward(probs, dp, ds, 3, log: false);
            }
            if (dq is not null)
                backend.Gemm(new GemmSpec(false, false, n, d, m, batch, (long)n * m, (long)m * d, (long)n * d, Alpha: s.Scale), ds, k!, dq);
            if (dk is not null)
                backend.Gemm(new GemmSpec(true, false, m, d, n, batch, (long)n * m, (long)n * d, (long)m * d, Alpha: s.Scale), ds, q!, dk);
        }
        finally
        {
            if (dScores is null) ds.Dispose();
        }
    }
}
