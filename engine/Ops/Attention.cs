using Sbp.Autograd;
using Sbp.Backends;
using Sbp.Stochastic;
using Sbp.Tensors;

namespace Sbp;

// Scaled dot-product attention as one recorded op (SBP gives it a "drop query rows" rule).
public static partial class Ops
{
    /// <summary>
    /// softmax(scale q k^T + bias + mask) v for q [B, H, N, D], k [B, H, M, D], v [B, H, M, Dv]
    /// -> [B, H, N, Dv]; scale defaults to 1/sqrt(D).
    /// <para><paramref name="bias"/>: an additive tensor broadcastable to [B, H, N, M] (e.g. Swin's
    /// relative position bias [H, N, M]); it receives a gradient (the score gradient summed to its shape).</para>
    /// <para><paramref name="mask"/>: an additive float tensor of 0 and -inf (or large negative)
    /// entries that never gets a gradient. It is either broadcastable to [B, H, N, M], or a window
    /// mask [G, h, N', M'] with B a multiple of G (h, N', M' broadcastable to H, N, M): batch entry
    /// b then uses mask[b mod G], as Swin's [nW, N, N] shifted-window mask for windows stored
    /// [batch * nW, ...] (pass it as [nW, 1, N, N]).</para>
    /// <para>Fully masked rows are an error: a mask row whose every key is -inf (or a NaN in the mask)
    /// throws, naming the row, before any work (softmax of such a row is undefined). Use a large
    /// finite negative (Swin uses -100) where a row may lose all its keys. Keep -inf out of the bias.</para>
    /// <para>One tape node, saving exactly q, k, v and P = softmax(S) [B, H, N, M] (each only when a
    /// gradient needs it); never S. Backward: dV = P^T dO, dP = dO V^T, dS = P (dP - rowsum(dP P)),
    /// dQ = scale dS K, dK = scale dS^T Q, dbias = dS summed to bias's shape.</para>
    /// <para>16-bit q, k, v (one type; autocast rounds them and the bias to its type): the Float32 computation on their exact
    /// widenings, the output and the saved P rounded to that type; gradients are Float32. Under <see cref="Tape.SaveActivationsAs"/>
    /// P is saved in that type too. Backends widen 16-bit operands where they read them (the CPU entry by entry, in cache).</para>
    /// </summary>
    public static Tensor ScaledDotProductAttention(Tensor q, Tensor k, Tensor v, Tensor? bias = null, Tensor? mask = null, float? scale = null)
    {
        const string op = "scaled_dot_product_attention";
        // Under autocast the mask is no operand: it stays as given (float16 would turn a large negative such as -1e9 into -inf).
        if (Autocast.Type is { } low) return AutocastGemm(low, [q, k, v, bias], t => ScaledDotProductAttention(t[0]!, t[1]!, t[2]!, t[3], mask, scale));
        CheckOperandTypes(op, [(q, "query"), (k, "key"), (v, "value"), (bias, "bias")], float32Beside16: "bias");
        CheckDevices(op, q, k);
        CheckDevices(op, q, v);
        if (q.Rank != 4 || k.Rank != 4 || v.Rank != 4)
            throw new ShapeMismatchException($"{op}: q {q.Shape}, k {k.Shape} and v {v.Shape} must be [B, H, N, D], [B, H, M, D] and [B, H, M, Dv] (rank 4; reshape heads out first).");
        int b = q.Shape[0], h = q.Shape[1], n = q.Shape[2], d = q.Shape[3];
        int m = k.Shape[2], dv = v.Shape[3];
        if (k.Shape[0] != b || k.Shape[1] != h || k.Shape[3] != d)
            throw new ShapeMismatchException($"{op}: k {k.Shape} must be [B={b}, H={h}, M, D={d}] to match q {q.Shape}.");
        if (v.Shape[0] != b || v.Shape[1] != h || v.Shape[2] != m)
            throw new ShapeMismatchException($"{op}: v {v.Shape} must be [B={b}, H={h}, M={m}, Dv] to match q {q.Shape} and k {k.Shape}.");
        if (m == 0 || d == 0)
            throw new ShapeMismatchException($"{op}: k {k.Shape} has {(m == 0 ? "no keys (M = 0); every query needs at least one key" : "D = 0; queries and keys need at least one feature")}.");
        var scores = new Shape(b, h, n, m);
        if (bias is not null)
        {
            CheckDevices(op, q, bias);
            if (!bias.Shape.BroadcastsTo(scores))
                throw new ShapeMismatchException($"{op}: bias {bias.Shape} must broadcast to the scores [B, H, N, M] = {scores} (e.g. [H, N, M] or [1, H, N, M]).");
        }
        bool windowMask = false;
        if (mask is not null)
        {
            CheckFloat(op, mask, "mask");
            CheckDevices(op, q, mask);
            windowMask = !mask.Shape.BroadcastsTo(scores);
            if (windowMask && !(mask.Rank == 4 && mask.Shape[0] > 0 && b % mask.Shape[0] == 0 &&
                                new Shape(mask.Shape.ToArray()[1..]).BroadcastsTo(new Shape(h, n, m))))
                throw new ShapeMismatchException(
                    $"{op}: mask {mask.Shape} must broadcast to the scores [B, H, N, M] = {scores}, or be a window mask [G, h, N, M] " +
                    $"with B = {b} a multiple of G and h 1 or {h} (e.g. Swin's [nW, 1, {n}, {m}]).");
            CheckMaskRows(op, mask);
        }
        float s = scale ?? 1f / MathF.Sqrt(d);
        var backend = q.Backend;

        bool needScores = q.RequiresGrad || k.RequiresGrad || (bias?.RequiresGrad ?? false);
        // P is written in the type it is saved in: q's 16-bit type, or SaveActivationsAs's when P is saved (the same rounding packing would do)
        var probsType = q.DType.Is16Bit() ? q.DType
            : Tape.SavedActivationType is { } saveAs && (needScores || v.RequiresGrad) ? saveAs : DType.Float32;
        using var probs = Tensor.Empty(op, scores, q.Device, probsType);
        var output = NewOfType(op, new Shape(b, h, n, dv), q);
        RunOrDispose(output, () => backend.AttentionForward(new AttentionSpec(b, h, n, m, d, dv, s, windowMask), q, k, v, bias, mask, probs, output));

        bool hasBias = bias is not null;
        Tensor[] inputs = bias is null ? [q, k, v] : [q, k, v, bias];
        Tensor?[] save = [k.RequiresGrad ? q : null, q.RequiresGrad ? k : null, needScores ? v : null, probs];
        return Tape.Record(op, output, inputs, save, ctx =>
        {
            const string bop = op + ".backward";
            var g = ctx.Grad;
            // Sizes from the gradient: inside an SBP region the query rows (or batch, heads) are compact.
            int n = g.Shape[2];
            var scores = new Shape(g.Shape[0], g.Shape[1], n, m);
            bool needBias = hasBias && ctx.NeedsGrad(3);
            var dq = ctx.NeedsGrad(0) ? New(bop, ctx.InputShape(0), g) : null;
            var dk = ctx.NeedsGrad(1) ? New(bop, ctx.InputShape(1), g) : null;
            var dvalue = ctx.NeedsGrad(2) ? New(bop, ctx.InputShape(2), g) : null;
            var ds = needBias ? New(bop, scores, g) : null;
            bool needV = dq is not null || dk is not null || needBias;         // v enters every score gradient
            // saved tensors as held (16-bit ones are widened by the backend where it reads them)
            g.Backend.AttentionBackward(new AttentionSpec(g.Shape[0], g.Shape[1], n, m, d, dv, s, false), ctx.SavedAsHeld(3), g,
                dk is null ? null : ctx.SavedAsHeld(0), dq is null ? null : ctx.SavedAsHeld(1), needV ? ctx.SavedAsHeld(2) : null, dq, dk, dvalue, ds);
            var dbias = needBias ? GradTo(ds!, ctx.InputShape(3)) : null;
            if (!ReferenceEquals(dbias, ds)) ds?.Dispose();                 // dS is the bias gradient when shapes match
            return hasBias ? [dq, dk, dvalue, dbias] : [dq, dk, dvalue];
        }, SbpRule.Attention);
    }

    /// <summary>
    /// Throws when a row of the mask is -inf for every key (its query would attend to nothing) or holds a NaN: a max over
    /// the mask's last axis, checked by the backend (on a GPU without the host waiting: raised at its next read).
    /// </summary>
    static void CheckMaskRows(string op, Tensor mask)
    {
        if (mask.Rank == 0)
        {
            mask.Backend.CheckAbove(mask, float.NegativeInfinity, (_, bits, note) => new ArgumentException(
                $"{op}: the scalar mask is {BitConverter.Int32BitsToSingle(bits)}: every score would be masked and softmax undefined. Use 0 or a large finite negative value{note}."));
            return;
        }
        var shape = mask.Shape;
        using var rows = New(op, shape.With(-1, 1), mask);
        mask.Backend.ReduceMax(mask, rows);
        mask.Backend.CheckAbove(rows, float.NegativeInfinity, (r, bits, note) =>
        {
            var index = new int[shape.Rank - 1];
            long rest = r;
            for (int i = index.Length - 1; i >= 0; i--) { index[i] = (int)(rest % shape[i]); rest /= shape[i]; }
            string at = $"mask{shape} row [{string.Join(", ", index)}, :]";
            return new ArgumentException(float.IsNaN(BitConverter.Int32BitsToSingle(bits))
                ? $"{op}: {at} contains NaN; masks must hold 0 and -inf (or large negative) values{note}."
                : $"{op}: {at} is -inf for every key, so its query row(s) would attend to nothing and softmax would be NaN. " +
                  $"Use a large finite negative value instead of -inf (Swin uses -100), or make sure every query keeps at least one key{note}.");
        });
    }
}
