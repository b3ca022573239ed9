using Sbp.Nn;
using Sbp.Rng;
using Sbp.Stochastic;
using Sbp.Tensors;

namespace Sbp.Models.Architectures;

/// <summary>
/// A pre-norm transformer block on tokens x [B, N, C] (timm's Block):
/// x + drop_path(proj(attention(norm1(x)))) then + drop_path(mlp(norm2(.))). Parameters
/// "norm1", "attn.qkv", "attn.proj", "norm2", "mlp.fc1", "mlp.fc2".
/// <para>With SBP (NeurIPS placement, branch output) two regions over the token axis share one
/// mask: the attention core (norm1, qkv, attention, head merge: everything before the output
/// projection) and the MLP branch (norm2, mlp, drop path) before its residual add. The skip
/// path keeps the full gradient.</para>
/// <para><see cref="Causal"/> blocks mask future tokens (for online temporal heads); the mask is made
/// inside the region body from the token count.</para>
/// </summary>
public sealed class VitBlock : Module
{
    public VitBlock(int dim, int heads, float mlpRatio, bool qkvBias, float dropPath, RandomSource rng, bool causal = false, Device? device = null,
        float layerNormEps = 1e-5f) : base(device)
    {
        ArgumentNullException.ThrowIfNull(rng);
        if (dim < 1 || heads < 1 || dim % heads != 0)
            throw new ArgumentException($"VitBlock(dim {dim}, heads {heads}): dim must be divisible by heads.");
        Dim = dim;
        Heads = heads;
        Causal = causal;
        // each norm feeds only GEMMs (the qkv projection, fc1): written in the autocast type under autocast
        Norm1 = RegisterModule("norm1", new LayerNorm(dim, layerNormEps, device: device) { FeedsGemm = true });
        Attn = RegisterModule("attn", new AttentionLayers(dim, qkvBias, rng, device));
        DropPath = RegisterModule("drop_path", new DropPath(dropPath, rng, device));
        Norm2 = RegisterModule("norm2", new LayerNorm(dim, layerNormEps, device: device) { FeedsGemm = true });
        Mlp = RegisterModule("mlp", new Mlp(dim, (int)(dim * mlpRatio), rng, device: device));
    }

    public int Dim { get; }
    public int Heads { get; }
    public bool Causal { get; }
    public LayerNorm Norm1 { get; }
    public AttentionLayers Attn { get; }
    public DropPath DropPath { get; }
    public LayerNorm Norm2 { get; }
    public Mlp Mlp { get; }

    /// <summary>qkv and proj of the attention branch ("attn.qkv", "attn.proj"); the block runs them.</summary>
    public sealed class AttentionLayers : Module
    {
        internal AttentionLayers(int dim, bool qkvBias, RandomSource rng, Device? device) : base(device)
        {
            Qkv = RegisterModule("qkv", new Linear(dim, 3 * dim, rng, qkvBias, device));
            Proj = RegisterModule("proj", new Linear(dim, dim, rng, true, device));
        }

        public Linear Qkv { get; }
        public Linear Proj { get; }

        public override Tensor Forward(Tensor x) =>
            throw new NotSupportedException("VitBlock.AttentionLayers holds the attention's parameters; run the VitBlock.");
    }

    public override Tensor Forward(Tensor x) => Forward(x, null, null, "block");

    /// <summary>The block with both branch regions over tokens (dimension 1) when a policy and a mask are given.</summary>
    public Tensor Forward(Tensor x, KeepMask? mask, SbpPolicy? policy, string name)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (x.Rank != 3 || x.Shape[2] != Dim)
            throw new ShapeMismatchException($"VitBlock(dim {Dim}): the input must be [B, N, {Dim}], got {x.Shape}.");
        if (mask is not null && mask.Size != x.Shape[1])
            throw new ArgumentException($"VitBlock '{name}': the keep mask covers {mask.Size} positions but the input {x.Shape} has {x.Shape[1]} tokens.");
        using var scope = TensorScope.Begin();
        var core = SbpRegions.Run(name + ".attn", x, 1, mask, policy, AttentionCore);
        var x1 = Ops.Add(x, DropPath.Forward(Attn.Proj.Forward(core)));
        var branch = SbpRegions.Run(name + ".mlp", x1, 1, mask, policy, MlpBranch);
        return scope.Keep(Ops.Add(x1, branch));
    }

    /// <summary>norm1, qkv, multi-head attention, heads merged: [B, N, C] before the output projection.</summary>
    Tensor AttentionCore(Tensor x)
    {
        int b = x.Shape[0], n = x.Shape[1], hd = Dim / Heads;
        using var scope = TensorScope.Begin();
        var (q, k, v) = MultiHeadAttention.ProjectHeads(Attn.Qkv, Norm1.Forward(x), Heads);   // [B, H, N, Dh]
        Tensor? mask = null;
        if (Causal)
        {
            mask = Constant("causal_mask", n, () =>
            {
                var m = new float[n * n];
                for (int i = 0; i < n; i++) for (int j = i + 1; j < n; j++) m[i * n + j] = float.NegativeInfinity;
                return Tensor.FromArray(m, new Shape(n, n), Device);
            });
        }
        var o = Ops.ScaledDotProductAttention(q, k, v, null, mask, 1f / MathF.Sqrt(hd));
        return scope.Keep(Ops.Reshape(Ops.Permute(o, 0, 2, 1, 3), b, n, Dim));
    }

    Tensor MlpBranch(Tensor x)
    {
        using var scope = TensorScope.Begin();
        return scope.Keep(DropPath.Forward(Mlp.Forward(Norm2.Forward(x))));
    }
}
