using Sbp.Rng;
using Sbp.Tensors;

namespace Sbp.Nn;

/// <summary>
/// Multi-head self-attention as timm's Attention, on x [B, N, C]: qkv = Linear(C, 3C) (parameters
/// "qkv.weight", "qkv.bias" when <c>qkvBias</c>), reshaped to [B, N, 3, H, Dh] and permuted to
/// [3, B, H, N, Dh]; softmax(q k^T / sqrt(Dh) + bias + mask) v by
/// <see cref="Ops.ScaledDotProductAttention"/>; heads merged back to [B, N, C]; proj = Linear(C, C)
/// ("proj.weight", "proj.bias"); dropouts "attn_drop" (on the attention probabilities) and "proj_drop".
/// With attention dropout active (training, attnDrop &gt; 0) the scores are composed from separate
/// ops so the dropout can act on the probabilities; otherwise one fused attention op runs.
/// </summary>
public sealed class MultiHeadAttention : Module
{
    public MultiHeadAttention(int dim, int heads, RandomSource rng, bool qkvBias = true, float attnDrop = 0f, float projDrop = 0f,
        Device? device = null) : base(device)
    {
        ArgumentNullException.ThrowIfNull(rng);
        if (dim < 1 || heads < 1 || dim % heads != 0)
            throw new ArgumentException($"MultiHeadAttention(dim {dim}, heads {heads}): dim and heads must be >= 1 and dim divisible by heads.");
        Dropout.CheckProbability("MultiHeadAttention attnDrop", attnDrop);
        Dropout.CheckProbability("MultiHeadAttention projDrop", projDrop);
        Dim = dim;
        Heads = heads;
        HeadDim = dim / heads;
        Scale = 1f / MathF.Sqrt(HeadDim);
        Qkv = RegisterModule("qkv", new Linear(dim, 3 * dim, rng, qkvBias, device));
        AttnDrop = RegisterModule("attn_drop", new Dropout(attnDrop, rng, device));
        Proj = RegisterModule("proj", new Linear(dim, dim, rng, true, device));
        ProjDrop = RegisterModule("proj_drop", new Dropout(projDrop, rng, device));
    }

    public int Dim { get; }
    public int Heads { get; }
    public int HeadDim { get; }
    /// <summary>1 / sqrt(HeadDim).</summary>
    public float Scale { get; }
    public Linear Qkv { get; }
    public Dropout AttnDrop { get; }
    public Linear Proj { get; }
    public Dropout ProjDrop { get; }

    public override Tensor Forward(Tensor x) => Forward(x, null, null);

    /// <summary>
    /// Self-attention over x [B, N, C] with an optional additive <paramref name="bias"/> that is
    /// learned (e.g. a relative position bias [H, N, N]; it gets a gradient) and an optional additive
    /// <paramref name="mask"/> of 0 and large negative values (no gradient), with the shapes
    /// <see cref="Ops.ScaledDotProductAttention"/> accepts (broadcastable to [B, H, N, N], or a window
    /// mask [G, 1, N, N] with B a multiple of G).
    /// </summary>
    public Tensor Forward(Tensor x, Tensor? bias, Tensor? mask)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (x.Rank != 3 || x.Shape[2] != Dim)
            throw new ShapeMismatchException($"MultiHeadAttention(dim {Dim}, heads {Heads}): the input must be [B, N, {Dim}], got {x.Shape}.");
        int b = x.Shape[0], n = x.Shape[1];
        // The scope frees every intermediate; the early disposes keep the forward's peak low
        // (the tape holds its own references to what backward needs).
        using var scope = TensorScope.Begin();
        var (q0, k0, v0) = ProjectHeads(Qkv, x, Heads);                             // [B, H, N, Dh]
        Tensor o;
        using (var q = q0)
        using (var k = k0)
        using (var v = v0)
            o = Training && AttnDrop.P > 0f
                ? ComposedAttention(q, k, v, bias, mask)
                : Ops.ScaledDotProductAttention(q, k, v, bias, mask, Scale);
        Tensor merged;                                                              // [B, N, C]
        using (o)
        using (var perm = Ops.Permute(o, 0, 2, 1, 3))
            merged = Ops.Reshape(perm, b, n, Dim);
        Tensor y;
        using (merged) y = Proj.Forward(merged);
        using (y)
            return scope.Keep(ProjDrop.Forward(y));
    }

    /// <summary>
    /// q, k, v [B, H, N, C / H] from x [B, N, C] through a C -> 3C projection whose weight rows are q, k,
    /// v, run as three GEMMs on row blocks of its weight (<see cref="Ops.LinearRows"/>, no weight copy):
    /// k and v first, then q. The values are those of one C -> 3C GEMM, without the copies that slicing
    /// its output into q, k and v takes (forward and backward). Under SBP (attention drops query rows) the
    /// queries' GEMM runs compact while the keys' and values' stay dense, and the queries' GEMM shares x
    /// with them (recorded after them) instead of saving a compact copy.
    /// </summary>
    public static (Tensor Q, Tensor K, Tensor V) ProjectHeads(Linear qkv, Tensor x, int heads)
    {
        ArgumentNullException.ThrowIfNull(qkv);
        ArgumentNullException.ThrowIfNull(x);
        int c = qkv.InFeatures;
        if (qkv.OutFeatures != 3 * c || c % heads != 0)
            throw new ArgumentException($"MultiHeadAttention.ProjectHeads: the projection must map C -> 3C with C divisible by {heads} heads, got {c} -> {qkv.OutFeatures}.");
        if (x.Rank != 3 || x.Shape[2] != c)
            throw new ShapeMismatchException($"MultiHeadAttention.ProjectHeads: x must be [B, N, {c}], got {x.Shape}.");
        int b = x.Shape[0], n = x.Shape[1], hd = c / heads;
        using var scope = TensorScope.Begin();
        Tensor Heads(int part) =>                                                   // rows [part C, (part + 1) C) -> [B, H, N, Dh]
            scope.Keep(Ops.Permute(Ops.Reshape(Ops.LinearRows(x, qkv.Weight, qkv.Bias, part * c, c), b, n, heads, hd), 0, 2, 1, 3));
        var k = Heads(1);
        var v = Heads(2);
        return (Heads(0), k, v);
    }

    /// <summary>softmax(q k^T scale + bias + mask) with dropout on the probabilities, times v, from separate ops.</summary>
    Tensor ComposedAttention(Tensor q, Tensor k, Tensor v, Tensor? bias, Tensor? mask)
    {
        int b = q.Shape[0], n = q.Shape[2];
        var scores = Ops.Mul(Ops.Matmul(q, Ops.Transpose(k, -2, -1)), Scale);      // [B, H, N, N]
        if (bias is not null) scores = Ops.Add(scores, bias);
        if (mask is not null)
        {
            var full = new Shape(b, Heads, n, n);
            if (mask.Shape.BroadcastsTo(full)) scores = Ops.Add(scores, mask);
            else
            {
                if (mask.Rank != 4 || mask.Shape[0] < 1 || b % mask.Shape[0] != 0)
                    throw new ShapeMismatchException($"MultiHeadAttention: mask {mask.Shape} must broadcast to {full} or be a window mask [G, 1, {n}, {n}] with B = {b} a multiple of G.");
                int g = mask.Shape[0];
                var windows = Ops.Add(Ops.Reshape(scores, b / g, g, Heads, n, n), mask);
                scores = Ops.Reshape(windows, b, Heads, n, n);
            }
        }
        var probs = AttnDrop.Forward(Ops.Softmax(scores, -1));
        return Ops.Matmul(probs, v);
    }
}
