using Sbp.Nn;
using Sbp.Rng;
using Sbp.Tensors;

namespace Sbp.Models.Architectures;

/// <summary>
/// Video Swin's PatchMerging (spatial only): x [B, T, H, W, C] (H, W padded to even) -> the 2 x 2
/// neighbours concatenated in the order (h0 w0, h1 w0, h0 w1, h1 w1) -> LayerNorm(4C) ("norm") ->
/// Linear(4C, 2C, no bias) ("reduction") -> [B, T, H/2, W/2, 2C].
/// </summary>
public sealed class PatchMerging3d : Module
{
    public PatchMerging3d(int dim, RandomSource rng, Device? device = null) : base(device)
    {
        Dim = dim;
        Norm = RegisterModule("norm", new LayerNorm(4 * dim, device: device));
        Reduction = RegisterModule("reduction", new Linear(4 * dim, 2 * dim, rng, bias: false, device: device));
    }

    public int Dim { get; }
    public LayerNorm Norm { get; }
    public Linear Reduction { get; }

    public override Tensor Forward(Tensor x)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (x.Rank != 5 || x.Shape[4] != Dim)
            throw new ShapeMismatchException($"PatchMerging3d(dim {Dim}): the input must be [B, T, H, W, {Dim}], got {x.Shape}.");
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
