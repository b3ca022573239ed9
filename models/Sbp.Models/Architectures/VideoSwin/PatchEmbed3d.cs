using Sbp.Nn;
using Sbp.Rng;
using Sbp.Tensors;

namespace Sbp.Models.Architectures;

/// <summary>
/// Video Swin's PatchEmbed3D: x [B, C, T, H, W] padded at the end to multiples of the patch, a
/// Conv3d with kernel = stride = patch ("proj"), then (optionally) LayerNorm ("norm") over
/// channels. Returns channels-last tokens [B, T', H', W', E], the layout of the Swin stages.
/// <para>With <c>stemChannels</c> &gt; 0 (not in the official code) a convolutional stem runs first at full
/// resolution ("stem": Conv3d 3x3x3 without bias, BatchNorm3d, ReLU), as the early convolutions of Xiao et
/// al. 2021: it gives the tokens local motion detectors a single linear patch projection cannot form.</para>
/// </summary>
public sealed class PatchEmbed3d : Module
{
    public PatchEmbed3d((int T, int H, int W) patch, int inChannels, int embedDim, bool norm, RandomSource rng, Device? device = null, int stemChannels = 0)
        : base(device)
    {
        Patch = patch;
        InChannels = inChannels;
        if (stemChannels > 0)
        {
            Stem = RegisterModule("stem", new Sequential(device,
                new Conv3d(inChannels, stemChannels, 3, rng, padding: [1, 1, 1], bias: false, device: device),
                new BatchNorm3d(stemChannels, device: device),
                new Relu(device)));
            inChannels = stemChannels;
        }
        Proj = RegisterModule("proj", new Conv3d(inChannels, embedDim, [patch.T, patch.H, patch.W], rng, stride: [patch.T, patch.H, patch.W], device: device));
        if (norm) Norm = RegisterModule("norm", new LayerNorm(embedDim, device: device));
    }

    public (int T, int H, int W) Patch { get; }
    /// <summary>Channels of the clips this embeds (the stem's input when there is one).</summary>
    public int InChannels { get; }
    /// <summary>The optional convolutional stem (null in the official layout).</summary>
    public Sequential? Stem { get; }
    public Conv3d Proj { get; }
    public LayerNorm? Norm { get; }

    public override Tensor Forward(Tensor x)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (x.Rank != 5 || x.Shape[1] != InChannels)
            throw new ShapeMismatchException($"PatchEmbed3d: the input must be [B, {InChannels}, T, H, W], got {x.Shape}.");
        using var scope = TensorScope.Begin();
        if (Stem is not null) x = Stem.Forward(x);
        var (pt, ph, pw) = SwinGeometry.Padding((x.Shape[2], x.Shape[3], x.Shape[4]), Patch);
        var padded = pt + ph + pw > 0 ? Ops.Pad(x, [0, pw, 0, ph, 0, pt]) : x;
        var tokens = Ops.Permute(Proj.Forward(padded), 0, 2, 3, 4, 1);                    // [B, T', H', W', E]
        return scope.Keep(Norm is null ? tokens : Norm.Forward(tokens));
    }
}
