using Sbp.Autograd;
using Sbp.Engine.Tests.Support;
using Sbp.Models.Architectures;
using Sbp.Rng;
using Sbp.Stochastic;
using Sbp.Tensors;

namespace Sbp.Models.Tests.Architectures;

/// <summary>Shifted-window masks, relative position indices, patch merging order and the SBP window check.</summary>
public sealed class SwinGeometryTests : ModelTestBase
{
    /// <summary>Video Swin's compute_mask written as its Python loop: a counter over slice triples, then window partition.</summary>
    static float[] OfficialMask((int T, int H, int W) size, (int T, int H, int W) win, (int T, int H, int W) shift)
    {
        // Python's slice(-w), slice(-w, -s), slice(-s, None) as [start, end) for an axis of n (s = 0: the last slice is everything).
        static (int, int)[] Slices(int n, int w, int s) => [(0, n - w), (n - w, s == 0 ? 0 : n - s), (s == 0 ? 0 : n - s, n)];
        var img = new int[size.T, size.H, size.W];
        int cnt = 0;
        foreach (var (d0, d1) in Slices(size.T, win.T, shift.T))
        foreach (var (h0, h1) in Slices(size.H, win.H, shift.H))
        foreach (var (w0, w1) in Slices(size.W, win.W, shift.W))
        {
            for (int d = d0; d < d1; d++) for (int h = h0; h < h1; h++) for (int w = w0; w < w1; w++) img[d, h, w] = cnt;
            cnt++;
        }
        int n = win.T * win.H * win.W;
        var windows = new List<int[]>();
        for (int a = 0; a < size.T; a += win.T)
        for (int b = 0; b < size.H; b += win.H)
        for (int c = 0; c < size.W; c += win.W)
        {
            var tokens = new List<int>();
            for (int i = 0; i < win.T; i++) for (int j = 0; j < win.H; j++) for (int k = 0; k < win.W; k++) tokens.Add(img[a + i, b + j, c + k]);
            windows.Add([.. tokens]);
        }
        var mask = new List<float>();
        foreach (var m in windows) for (int i = 0; i < n; i++) for (int j = 0; j < n; j++) mask.Add(m[i] == m[j] ? 0f : -100f);
        return [.. mask];
    }

    [TestCase(4, 8, 8, 2, 4, 4, 1, 2, 2)]
    [TestCase(8, 6, 6, 4, 3, 3, 2, 1, 1)]
    [TestCase(4, 4, 6, 2, 4, 3, 1, 0, 1)]
    public void Shift_mask_matches_the_official_construction(int t, int h, int w, int wt, int wh, int ww, int st, int sh, int sw)
    {
        var ours = SwinGeometry.ShiftMask((t, h, w), (wt, wh, ww), (st, sh, sw));
        Assert.That(ours, Is.EqualTo(OfficialMask((t, h, w), (wt, wh, ww), (st, sh, sw))));
        Assert.That(ours, Has.Some.EqualTo(-100f));
    }

    [Test]
    public void Relative_index_decodes_to_coordinate_differences()
    {
        var table = (T: 3, H: 3, W: 2);
        foreach (var win in new[] { (3, 3, 2), (2, 3, 1) })
        {
            var idx = SwinGeometry.RelativePositionIndex(win, table);
            int n = win.Item1 * win.Item2 * win.Item3;
            for (int i = 0; i < n; i++)
                for (int j = 0; j < n; j++)
                {
                    int v = idx[i * n + j];
                    int rw = v % (2 * table.W - 1), rh = v / (2 * table.W - 1) % (2 * table.H - 1), rt = v / ((2 * table.W - 1) * (2 * table.H - 1));
                    int ti = i / (win.Item2 * win.Item3), hi = i / win.Item3 % win.Item2, wi = i % win.Item3;
                    int tj = j / (win.Item2 * win.Item3), hj = j / win.Item3 % win.Item2, wj = j % win.Item3;
                    Assert.That((rt - (table.T - 1), rh - (table.H - 1), rw - (table.W - 1)), Is.EqualTo((ti - tj, hi - hj, wi - wj)));
                }
        }
        var full = SwinGeometry.RelativePositionIndex(table, table);
        Assert.That(full.Distinct().Count(), Is.EqualTo(5 * 5 * 3), "a full window uses every row of the table");
    }

    [Test]
    public void Effective_window_shrinks_to_small_inputs_and_drops_their_shift()
    {
        var (win, shift) = SwinGeometry.Effective((8, 4, 16), (8, 7, 7), (4, 3, 3));
        Assert.That(win, Is.EqualTo((8, 4, 7)));
        Assert.That(shift, Is.EqualTo((0, 0, 3)));
    }

    [Test]
    public void Patch_merging_concatenates_the_four_neighbours_in_swin_order()
    {
        using var merge = new PatchMerging3d(3, new RandomSource(2), Device);
        using var scope = TensorScope.Begin();
        using var noGrad = Tape.NoGrad();
        var x = Tensor.FromArray(Rand.Uniform(3, 2 * 2 * 4 * 6 * 3), new Shape(2, 2, 4, 6, 3), Device);
        var y = merge.Forward(x);
        // x0 = x[:, :, 0::2, 0::2], x1 = x[:, :, 1::2, 0::2], x2 = x[:, :, 0::2, 1::2], x3 = x[:, :, 1::2, 1::2].
        Tensor Pick(int dh, int dw)
        {
            var rows = Ops.IndexSelect(x, 2, Tensor.FromArray(new[] { dh, dh + 2 }, new Shape(2), Device));
            return Ops.IndexSelect(rows, 3, Tensor.FromArray(new[] { dw, dw + 2, dw + 4 }, new Shape(3), Device));
        }
        var cat = Ops.Concat([Pick(0, 0), Pick(1, 0), Pick(0, 1), Pick(1, 1)], 4);
        var expected = Ops.Linear(Ops.LayerNorm(cat, [12], merge.Norm.Weight, merge.Norm.Bias), merge.Reduction.Weight);
        Assert.That(y.Shape, Is.EqualTo(new Shape(2, 2, 2, 3, 6)));
        AssertClose("patch merging", y.ToArray(), expected.ToArray(), 1e-6, 1e-6);
    }

    [Test]
    public void Strided_masks_keep_the_same_frames_in_every_window_shifted_or_not()
    {
        var mask = KeepMask.Strided(8, 2, 1);
        Assert.That(SwinGeometry.TemporalMaskProblem(mask, (8, 4, 4), (4, 4, 4), (0, 0, 0)), Is.Null);
        Assert.That(SwinGeometry.TemporalMaskProblem(mask, (8, 4, 4), (2, 2, 2), (1, 1, 1)), Is.Null);
        // Kept frames [0, 1] of 4: shifted by one, each window of 2 keeps one frame, but at different offsets.
        Assert.That(SwinGeometry.TemporalMaskProblem(KeepMask.FromIndices(4, [0, 1]), (4, 4, 4), (2, 2, 2), (1, 1, 1)), Does.Contain("same frames"));
        // Not shifted, the same mask keeps whole windows (the first, not the second): the region runs them as batch entries.
        Assert.That(SwinGeometry.TemporalMaskProblem(KeepMask.FromIndices(4, [0, 1]), (4, 4, 4), (2, 2, 2), (0, 0, 0)), Is.Null);
        // Equal counts per window but different offsets ([0] and [3] of two windows of 2): the count rule accepted it, the region does not.
        Assert.That(SwinGeometry.TemporalMaskProblem(KeepMask.FromIndices(4, [0, 3]), (4, 4, 4), (2, 2, 2), (0, 0, 0)), Does.Contain("same frames"));
        // 6 token frames in windows of 4: padded to 8, the strided pattern continues over the padding.
        Assert.That(SwinGeometry.TemporalMaskProblem(KeepMask.Strided(6, 2, 1), (6, 4, 4), (4, 4, 4), (2, 2, 2)), Is.Null);
        Assert.That(SwinGeometry.TemporalMaskProblem(KeepMask.Strided(6, 4, 2), (6, 4, 4), (4, 4, 4), (0, 0, 0)), Is.Null);
        // One window over every frame: any mask.
        Assert.That(SwinGeometry.TemporalMaskProblem(KeepMask.FromIndices(3, [0, 2]), (3, 4, 4), (4, 4, 4), (2, 2, 2)), Is.Null);
    }

    [Test]
    public void Swin_block_refuses_masks_that_unbalance_its_windows_before_any_op_runs()
    {
        using var block = new SwinBlock3d(8, 2, (2, 2, 2), shifted: false, 4f, true, 0f, new RandomSource(4), Device);
        using var scope = TensorScope.Begin();
        var x = Tensor.FromArray(Rand.Uniform(5, 4 * 2 * 2 * 8), new Shape(1, 4, 2, 2, 8), Device);
        x.RequiresGrad = true;
        var policy = Policy(SbpPlacement.BlockOutput, RegionMode.SparseCache);
        using var tape = Tape.Begin();
        Assert.That(() => block.Forward(x, KeepMask.FromIndices(4, [1, 2]), policy, "b"),
            Throws.TypeOf<SbpRegionException>().With.Message.Contains("same frames").And.Message.Contains("keep 1, 0.5"));
        Assert.That(() => block.Forward(x, KeepMask.FromIndices(4, [0, 3]), policy, "b"),
            Throws.TypeOf<SbpRegionException>().With.Message.Contains("same frames"));
        Assert.That(tape.Nodes, Is.Empty, "the check runs before the block records anything");
        Assert.That(() => block.Forward(x, KeepMask.Strided(3, 2, 1), policy, "b"),
            Throws.ArgumentException.With.Message.Contains("3 positions"));
    }

    [Test]
    public void Every_mask_the_swin_block_accepts_the_region_runs()
    {
        // The block's check and the region apply the same rule: for every mask over 4 frames, the block either
        // refuses it up front or the region trains it (no refusal from inside the region).
        using var block = new SwinBlock3d(8, 2, (2, 2, 2), shifted: true, 4f, true, 0f, new RandomSource(4), Device);
        var policy = Policy(SbpPlacement.BlockOutput, RegionMode.SparseCache);
        for (int bits = 1; bits < 16; bits++)
        {
            var mask = KeepMask.FromIndices(4, Enumerable.Range(0, 4).Where(i => (bits >> i & 1) == 1));
            using var scope = TensorScope.Begin();
            var x = Tensor.FromArray(Rand.Uniform(bits, 4 * 4 * 4 * 8), new Shape(1, 4, 4, 4, 8), Device);
            x.RequiresGrad = true;
            using var tape = Tape.Begin();
            bool accepted = SwinGeometry.TemporalMaskProblem(mask, (4, 4, 4), block.Window, block.Shift) is null;
            if (!accepted)
            {
                Assert.That(() => block.Forward(x, mask, policy, "b"), Throws.TypeOf<SbpRegionException>().With.Message.StartsWith("SwinBlock3d 'b'"), $"{mask}");
                continue;
            }
            var y = block.Forward(x, mask, policy, "b");
            tape.Backward(Ops.Sum(y));
            Assert.That(x.Grad, Is.Not.Null, $"{mask}");
            x.ZeroGrad();
        }
    }

    [TestCase("swin-nano")]
    [TestCase("det-nano")]
    public void Frame_models_refuse_grid_masks(string config)
    {
        var m = Build(config);
        using var scope = TensorScope.Begin();
        var x = Tensor.FromArray(Input(m).Data, new Shape(Input(m).Shape), Device);
        Assert.That(() => m.Forward(x, Policy(SbpPlacement.BlockOutput, RegionMode.Oracle, MaskKind.Grid), 0),
            Throws.ArgumentException.With.Message.Contains("grid masks"));
    }

    [Test]
    public void Models_refuse_the_other_placement()
    {
        var swin = Build("swin-nano");
        var vit = Build("vit-nano");
        using var scope = TensorScope.Begin();
        var xs = Tensor.FromArray(Input(swin).Data, new Shape(Input(swin).Shape), Device);
        var xv = Tensor.FromArray(Input(vit).Data, new Shape(Input(vit).Shape), Device);
        Assert.That(() => swin.Forward(xs, Policy(SbpPlacement.BranchOutput, RegionMode.Oracle), 0), Throws.ArgumentException.With.Message.Contains("BranchOutput"));
        Assert.That(() => vit.Forward(xv, Policy(SbpPlacement.BlockOutput, RegionMode.Oracle), 0), Throws.ArgumentException.With.Message.Contains("BlockOutput"));
    }
}
