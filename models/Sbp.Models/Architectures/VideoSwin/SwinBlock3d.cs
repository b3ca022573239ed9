using Sbp.Nn;
using Sbp.Rng;
using Sbp.Stochastic;
using Sbp.Tensors;

namespace Sbp.Models.Architectures;

/// <summary>
/// Video Swin's SwinTransformerBlock3D on x [B, T, H, W, C]:
/// x + drop_path(attn(norm1(x))) over (shifted) windows, then + drop_path(mlp(norm2(.))).
/// Windows: padded at the end to multiples of the effective window, rolled by -shift (shifted
/// blocks), partitioned, attended with the relative position bias and the shift mask, reversed,
/// rolled back and cropped. Every size comes from the input's shape, so the block is a valid SBP
/// region body; with SBP the whole block is one region over the time axis (block-output
/// placement), and the mask is given in the block's (unrolled) frame order. Padded frames continue
/// the mask's pattern inside the region, so any clip length trains.
/// </summary>
public sealed class SwinBlock3d : Module
{
    // The last shift mask's host values by (padded size, window, shift): recomputing it every step costs
    // O(windows * N^2) host work; the tensor itself is still made inside the region body each time.

    public SwinBlock3d(int dim, int heads, (int T, int H, int W) window, bool shifted, float mlpRatio, bool qkvBias, float dropPath,
        RandomSource rng, Device? device = null, SwinBiasIndex biasIndex = SwinBiasIndex.Official) : base(device)
    {
        ArgumentNullException.ThrowIfNull(rng);
        Dim = dim;
        Window = window;
        Shift = shifted ? (window.T / 2, window.H / 2, window.W / 2) : (0, 0, 0);
        // each norm feeds only GEMMs (through pad, roll and window partition): written in the autocast type under autocast
        Norm1 = RegisterModule("norm1", new LayerNorm(dim, device: device) { FeedsGemm = true });
        Attn = RegisterModule("attn", new WindowAttention3d(dim, heads, window, qkvBias, rng, device, biasIndex));
        DropPath = RegisterModule("drop_path", new DropPath(dropPath, rng, device));
        Norm2 = RegisterModule("norm2", new LayerNorm(dim, device: device) { FeedsGemm = true });
        Mlp = RegisterModule("mlp", new Mlp(dim, (int)(dim * mlpRatio), rng, device: device));
    }

    public int Dim { get; }
    public (int T, int H, int W) Window { get; }
    /// <summary>Half the window for shifted blocks (odd blocks of a stage), else zero.</summary>
    public (int T, int H, int W) Shift { get; }
    public LayerNorm Norm1 { get; }
    public WindowAttention3d Attn { get; }
    public DropPath DropPath { get; }
    public LayerNorm Norm2 { get; }
    public Mlp Mlp { get; }

    /// <summary>The effective window and shift for input sizes (T, H, W).</summary>
    public ((int T, int H, int W) Window, (int T, int H, int W) Shift) EffectiveWindow(int t, int h, int w) =>
        SwinGeometry.Effective((t, h, w), Window, Shift);

    public override Tensor Forward(Tensor x) => Body(x);

    /// <summary>
    /// The block as one SBP region over time (dimension 1) with <paramref name="mask"/> at its output
    /// when <paramref name="policy"/> and the mask are given. The mask must keep the same frames in
    /// every temporal window (after the block pads and shifts): <see cref="SwinGeometry.TemporalMaskProblem"/>
    /// checks that with the region's own layout rules before anything runs.
    /// </summary>
    public Tensor Forward(Tensor x, KeepMask? mask, SbpPolicy? policy, string name)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (policy is not null && mask is not null) CheckMask(x, mask, name);
        return SbpRegions.Run(name, x, 1, mask, policy, Body);
    }

    void CheckMask(Tensor x, KeepMask mask, string name)
    {
        CheckInput(x);
        if (mask.Size != x.Shape[1])
            throw new ArgumentException($"SwinBlock3d '{name}': the keep mask covers {mask.Size} positions but the block input {x.Shape} has {x.Shape[1]} frames.");
        if (SwinGeometry.TemporalMaskProblem(mask, (x.Shape[1], x.Shape[2], x.Shape[3]), Window, Shift) is { } why)
            throw new SbpRegionException($"SwinBlock3d '{name}': {why}");
    }

    void CheckInput(Tensor x)
    {
        if (x.Rank != 5 || x.Shape[4] != Dim)
            throw new ShapeMismatchException($"SwinBlock3d(dim {Dim}): the input must be [B, T, H, W, {Dim}], got {x.Shape}.");
    }

    Tensor Body(Tensor x)
    {
        CheckInput(x);
        int b = x.Shape[0], t = x.Shape[1], h = x.Shape[2], w = x.Shape[3];
        var (win, shift) = EffectiveWindow(t, h, w);
        var (pt, ph, pw) = SwinGeometry.Padding((t, h, w), win);
        bool padded = pt + ph + pw > 0, shifted = shift.T + shift.H + shift.W > 0;
        int tp = t + pt, hp = h + ph, wp = w + pw;
        // Each intermediate is freed once the next op has read it (Consume; the tape keeps what backward
        // needs): under SBP the block's saved copies are compact, so full-size values must not linger.
        using var scope = TensorScope.Begin();
        var y = Norm1.Forward(x);
        if (padded) y = y.Consume(z => Ops.Pad(z, [0, 0, 0, pw, 0, ph, 0, pt]));
        if (shifted) y = y.Consume(z => Ops.Roll(z, [-shift.T, -shift.H, -shift.W], [1, 2, 3]));
        Tensor? attnMask = null;
        if (shifted)
        {
            attnMask = Constant("shift_mask", ((tp, hp, wp), win, shift), () =>
            {
                var m = SwinGeometry.ShiftMask((tp, hp, wp), win, shift);
                int n = win.T * win.H * win.W;
                return Tensor.FromArray(m, new Shape(m.Length / (n * n), 1, n, n), Device);
            });
        }
        y = y.Consume(z => Ops.WindowPartition3d(z, win))                                 // [B * nW, N, C]
            .Consume(z => Attn.Forward(z, win, attnMask))
            .Consume(z => Ops.WindowReverse3d(z, win, b, tp, hp, wp));
        if (shifted) y = y.Consume(z => Ops.Roll(z, [shift.T, shift.H, shift.W], [1, 2, 3]));
        // Crop only what was padded: each crop is a copy (and, along the region's time axis, a layout change).
        if (pt > 0) y = y.Consume(z => Ops.Slice(z, 1, 0, t));
        if (ph > 0) y = y.Consume(z => Ops.Slice(z, 2, 0, h));
        if (pw > 0) y = y.Consume(z => Ops.Slice(z, 3, 0, w));
        var x1 = y.Consume(DropPath.Forward).Consume(z => Ops.Add(x, z));
        var x2 = Norm2.Forward(x1).Consume(Mlp.Forward).Consume(DropPath.Forward).Consume(z => Ops.Add(x1, z));
        x1.Dispose();
        return scope.Keep(x2);
    }
}
