using Sbp.Nn;
using Sbp.Rng;
using Sbp.Tensors;

namespace Sbp.Models.Architectures;

/// <summary>
/// Video Swin's PatchEmbed3D: x [B, C, T, H, W] padded at the end to multiples of the patch, a
/// Conv3d with kernel = stride = patch ("proj"), then (optionally) LayerNorm ("norm") over
/// channels. Returns channels-last tokens [B, T', H', W', E], the layout of the Swin stages.
/// </summary>
public sealed class PatchEmbed3d : Module
{
    public PatchEmbed3d((int T, int H, int W) patch, int inChannels, int embedDim, bool norm, RandomSource rng, Device? device = null) : base(device)
    {
        Patch = patch;
        Proj = RegisterModule("proj", new Conv3d(inChannels, embedDim, [patch.T, patch.H, patch.W], rng, stride: [patch.T, patch.H, patch.W], device: device));
        if (norm) Norm = RegisterModule("norm", new LayerNorm(embedDim, device: device));
    }

    public (int T, int H, int W) Patch { get; }
    public Conv3d Proj { get; }
    public LayerNorm? Norm { get; }

    public override Tensor Forward(Tensor x)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (x.Rank != 5 || x.Shape[1] != Proj.InChannels)
            throw new ShapeMismatchException($"PatchEmbed3d: the input must be [B, {Proj.InChannels}, T, H, W], got {x.Shape}.");
        using var scope = TensorScope.Begin();
        var (pt, ph, pw) = SwinGeometry.Padding((x.Shape[2], x.Shape[3], x.Shape[4]), Patch);
        var padded = pt + ph + pw > 0 ? Ops.Pad(x, [0, pw, 0, ph, 0, pt]) : x;
        var tokens = Ops.Permute(Proj.Forward(padded), 0, 2, 3, 4, 1);                    // [B, T', H', W', E]
        return scope.Keep(Norm is null ? tokens : Norm.Forward(tokens));
    }
}
