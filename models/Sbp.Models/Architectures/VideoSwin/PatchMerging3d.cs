using Sbp.Nn;
using Sbp.Rng;
using Sbp.Tensors;

namespace Sbp.Models.Architectures;

/// <summary>
/// Video Swin's PatchMerging (spatial only): x [B, T, H, W, C] (H, W padded to even) -> the 2 x 2
/// neighbours concatenated in the order (h0 w0, h1 w0, h0 w1, h1 w1) -> LayerNorm(4C) ("norm") ->
/// Linear(4C, 2C, no bias) ("reduction") -> [B, T, H/2, W/2, 2C].
/// <para>With <c>spatial: false</c> (a stage whose grid is at most 2 x 2, see
/// <see cref="VideoSwinTransformer.MergesSpatially"/>) it only widens the channels: LayerNorm(C) ->
/// Linear(C, 2C, no bias) per token, [B, T, H, W, 2C]. Merging a 2 x 2 grid into one token would
/// give each quadrant its own weights: the last stage and the mean-pooled head would lose the
/// translation equivariance the task's features rely on (swin-micro on 32 px clips then did not learn).</para>
/// </summary>
public sealed class PatchMerging3d : Module
{
    public PatchMerging3d(int dim, RandomSource rng, Device? device = null, bool spatial = true) : base(device)
    {
        Dim = dim;
        Spatial = spatial;
        int inFeatures = spatial ? 4 * dim : dim;
        Norm = RegisterModule("norm", new LayerNorm(inFeatures, device: device) { FeedsGemm = true });   // feeds the reduction only
        Reduction = RegisterModule("reduction", new Linear(inFeatures, 2 * dim, rng, bias: false, device: device));
    }

    public int Dim { get; }
    /// <summary>False: channels only (the grid is kept).</summary>
    public bool Spatial { get; }
    public LayerNorm Norm { get; }
    public Linear Reduction { get; }

    public override Tensor Forward(Tensor x)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (x.Rank != 5 || x.Shape[4] != Dim)
            throw new ShapeMismatchException($"PatchMerging3d(dim {Dim}): the input must be [B, T, H, W, {Dim}], got {x.Shape}.");
        if (!Spatial) return Reduction.Forward(Norm.Forward(x));
        using var scope = TensorScope.Begin();
        int b = x.Shape[0], t = x.Shape[1], h = x.Shape[2], w = x.Shape[3];
        var padded = h % 2 + w % 2 > 0 ? Ops.Pad(x, [0, 0, 0, w % 2, 0, h % 2]) : x;
        h += h % 2;
        w += w % 2;
        // [B, T, H/2, 2(h), W/2, 2(w), C] -> [B, T, H/2, W/2, 2(w), 2(h), C]: the w offset outer, the h offset inner.
        var split = Ops.Reshape(padded, b, t, h / 2, 2, w / 2, 2, Dim);
        var merged = Ops.Reshape(Ops.Permute(split, 0, 1, 2, 4, 5, 3, 6), b, t, h / 2, w / 2, 4 * Dim);
        return scope.Keep(Reduction.Forward(Norm.Forward(merged)));
    }
}
