using Sbp.Autograd;
using Sbp.Engine.Tests.Support;
using Sbp.Models.Architectures;
using Sbp.Rng;
using Sbp.Stochastic;
using Sbp.Tensors;

namespace Sbp.Models.Tests.Architectures;

/// <summary>
/// The models with SBP on and off through paths that work without the region engine: plain
/// backprop, keep = 1, and the Oracle mode (GradMask at each region output), checked against
/// properties derived independently of the models (docs/SBP.md section 4).
/// </summary>
public sealed class OracleTests : ModelTestBase
{
    static SbpPlacement PlacementOf(string config) => config.StartsWith("vit", StringComparison.Ordinal) ? SbpPlacement.BranchOutput : SbpPlacement.BlockOutput;

    [TestCase("swin-nano", new[] { 2, 5 })]
    [TestCase("vit-nano", new[] { 2, 5 })]
    [TestCase("det-nano", new[] { 2, 8, 3 })]
    public void Forward_gives_logits_of_the_expected_shape(string config, int[] expected)
    {
        var m = Build(config);
        var r = Run(m, Input(m, batch: 2), null);
        Assert.That(r.Output, Has.Length.EqualTo(expected.Aggregate(1, (p, d) => p * d)));
        Assert.That(r.Output, Has.All.Not.NaN);
    }

    [TestCase("swin-nano", MaskKind.Strided)]
    [TestCase("vit-nano", MaskKind.Grid)]
    [TestCase("vit-nano", MaskKind.Random)]
    [TestCase("det-nano", MaskKind.Strided)]
    public void Forward_is_identical_with_sbp_on_and_off(string config, MaskKind kind)
    {
        var m = Build(config);
        var input = Input(m, batch: 2);
        var plain = Run(m, input, null);
        var oracle = Run(m, input, Policy(PlacementOf(config), RegionMode.Oracle, kind));
        Assert.That(oracle.Output, Is.EqualTo(plain.Output));
        Assert.That(oracle.Loss, Is.EqualTo(plain.Loss));
        Assert.That(oracle.Grads["input"], Is.Not.EqualTo(plain.Grads["input"]), "keep 1/2 must change the gradients");
    }

    [TestCase("swin-nano", RegionMode.SparseCache)]
    [TestCase("swin-nano", RegionMode.Oracle)]
    [TestCase("vit-nano", RegionMode.SparseCache)]
    [TestCase("vit-nano", RegionMode.Oracle)]
    [TestCase("det-nano", RegionMode.SparseCache)]
    [TestCase("det-nano", RegionMode.Oracle)]
    public void Keep_one_is_plain_backprop(string config, RegionMode mode)
    {
        var m = Build(config);
        var input = Input(m, batch: 2);
        var plain = Run(m, input, null);
        var keepAll = Run(m, input, Policy(PlacementOf(config), mode, MaskKind.Random, keep: 1.0));
        Assert.That(keepAll.Output, Is.EqualTo(plain.Output));
        AssertSameGrads($"{config} keep 1 ({mode})", keepAll, plain, 1e-6, 1e-7);
    }

    /// <summary>The Oracle puts one GradMask at each region output: as many as the papers' placement rules give.</summary>
    [Test]
    public void Oracle_regions_follow_the_papers_placement()
    {
        var swin = (VideoSwinTransformer)Build("swin-nano");
        // CVPR: every block of stages 1-3 except the last two of stage 3 (depths 2, 1, 3, 1 -> 2 + 1 + 1).
        var d = swin.Config.Depths;
        int swinRegions = d[0] + d[1] + (d[2] - 2);
        Assert.That(Run(swin, Input(swin), Policy(SbpPlacement.BlockOutput, RegionMode.Oracle)).Ops.Count(o => o == "grad_mask"), Is.EqualTo(swinRegions));

        var vit = (VideoVit)Build("vit-nano");
        // NeurIPS: two regions (attention core, MLP branch) in each of the later 2/3 of the blocks.
        int vitRegions = 2 * (vit.Config.Depth * 2 / 3);
        Assert.That(Run(vit, Input(vit), Policy(SbpPlacement.BranchOutput, RegionMode.Oracle, MaskKind.Grid)).Ops.Count(o => o == "grad_mask"), Is.EqualTo(vitRegions));

        var det = (FrameDetector)Build("det-nano");
        // One region per residual block of the SBP stages, plus the stem.
        int detRegions = 1 + det.Config.Blocks.Take(det.Config.SbpStages).Sum();
        Assert.That(Run(det, Input(det), Policy(SbpPlacement.BlockOutput, RegionMode.Oracle)).Ops.Count(o => o == "grad_mask"), Is.EqualTo(detRegions));
    }

    /// <summary>SbpCoverage.AllBlocks makes every Swin block and every ViT block a region, and says so in SbpBlocks.</summary>
    [Test]
    public void All_blocks_coverage_makes_every_block_a_region()
    {
        var swin = (VideoSwinTransformer)Build("swin-nano");
        var all = Policy(SbpPlacement.BlockOutput, RegionMode.Oracle) with { Coverage = SbpCoverage.AllBlocks };
        Assert.That(Run(swin, Input(swin), all).Ops.Count(o => o == "grad_mask"), Is.EqualTo(swin.Config.Depths.Sum()));
        Assert.That(swin.SbpBlocks(SbpCoverage.AllBlocks).Count(), Is.EqualTo(swin.Config.Depths.Sum()));
        Assert.That(swin.SbpBlocks().Count(), Is.LessThan(swin.Config.Depths.Sum()), "the paper's placement leaves the late blocks out");

        var vit = (VideoVit)Build("vit-nano");
        var vitAll = Policy(SbpPlacement.BranchOutput, RegionMode.Oracle, MaskKind.Grid) with { Coverage = SbpCoverage.AllBlocks };
        Assert.That(Run(vit, Input(vit), vitAll).Ops.Count(o => o == "grad_mask"), Is.EqualTo(2 * vit.Config.Depth));
    }

    /// <summary>
    /// The detector's backbone works frame by frame and its head sees every frame: with one mask
    /// shared by all stages, the input gradient of kept frames equals plain backprop and that of
    /// dropped frames is exactly zero.
    /// </summary>
    [Test]
    public void Detector_kept_frames_get_the_plain_gradient_and_dropped_frames_none()
    {
        var m = (FrameDetector)Build("det-nano");
        var input = Input(m, batch: 2);
        var policy = Policy(SbpPlacement.BlockOutput, RegionMode.Oracle, MaskKind.Random);
        var plain = Run(m, input, null);
        var sbp = Run(m, input, policy, step: 5);
        int t = m.SampleShape[0], frame = m.SampleShape[1] * m.SampleShape[2] * m.SampleShape[3];
        var mask = policy.Masks.Next(5, 0, t);
        for (int b = 0; b < 2; b++)
            for (int f = 0; f < t; f++)
            {
                var got = sbp.Grads["input"].AsSpan((b * t + f) * frame, frame).ToArray();
                var want = plain.Grads["input"].AsSpan((b * t + f) * frame, frame).ToArray();
                if (mask.IsKept(f)) AssertClose($"kept frame {f}", got, want, 1e-5, 1e-7);
                else Assert.That(got, Has.All.EqualTo(0f), $"dropped frame {f}");
            }
        AssertClose("head gradients see every frame", sbp.Grads["head.classifier.weight"], plain.Grads["head.classifier.weight"], 1e-6, 1e-7);
    }

    /// <summary>
    /// One Swin block is one region over time: its gradients are linear in the mask, so the two
    /// offsets of the stride-2 family (which partition the frames) add up to plain backprop, and
    /// the upstream gradient at dropped frames changes nothing.
    /// </summary>
    [Test]
    public void Swin_block_gradients_add_up_over_a_partition_of_frames()
    {
        var block = Own(new SwinBlock3d(8, 2, (2, 2, 2), shifted: true, 4f, true, 0f, new RandomSource(4), Device));
        var input = (Rand.Uniform(5, 4 * 4 * 4 * 8), new[] { 1, 4, 4, 4, 8 });
        var policy = Policy(SbpPlacement.BlockOutput, RegionMode.Oracle);
        var full = Run(block, input, x => block.Forward(x));
        var even = Run(block, input, x => block.Forward(x, KeepMask.Strided(4, 2, 0), policy, "b"));
        var odd = Run(block, input, x => block.Forward(x, KeepMask.Strided(4, 2, 1), policy, "b"));
        foreach (var (name, g) in full.Grads)
            AssertClose($"g(even) + g(odd) of {name}", even.Grads[name].Zip(odd.Grads[name], (a, b) => a + b).ToArray(), g, 1e-4, 1e-6);
        Assert.That(even.Grads["attn.relative_position_bias_table"], Is.Not.EqualTo(full.Grads["attn.relative_position_bias_table"]));
    }

    /// <summary>The ViT's MLP region is position-wise: its parameters get plain backprop's gradient of the upstream gradient masked to kept tokens.</summary>
    [Test]
    public void Vit_mlp_branch_gradient_is_plain_backprop_of_the_masked_upstream_gradient()
    {
        var block = Own(new VitBlock(8, 2, 4f, true, 0f, new RandomSource(6), device: Device));
        var input = (Rand.Uniform(7, 2 * 5 * 8), new[] { 2, 5, 8 });
        var mask = KeepMask.FromIndices(5, [0, 2, 3]);
        var policy = Policy(SbpPlacement.BranchOutput, RegionMode.Oracle);
        var sbp = Run(block, input, x => block.Forward(x, mask, policy, "b"));
        // Plain backprop with the block output multiplied by the mask (constant) on the way out: the MLP branch sees M * dy.
        var masked = Run(block, input, x =>
        {
            var m = Tensor.FromArray(mask.ToFloatArray(), new Shape(1, 5, 1), Device);
            return Ops.Mul(block.Forward(x), m);
        });
        foreach (var name in new[] { "mlp.fc1.weight", "mlp.fc1.bias", "mlp.fc2.weight", "mlp.fc2.bias", "norm2.weight", "norm2.bias" })
            AssertClose(name, sbp.Grads[name], masked.Grads[name], 1e-5, 1e-7);
    }

    [Test]
    public void Vit_token_masks_pin_the_cls_token_and_follow_the_grid()
    {
        var vit = (VideoVit)Build("vit-nano");
        var grid = vit.Config.Grid;
        var policy = Policy(SbpPlacement.BranchOutput, RegionMode.Oracle, MaskKind.Grid);
        var m = vit.TokenMask(policy, 3, 1, grid);
        var inner = policy.Masks.Next(3, 1, grid.T, grid.H, grid.W);
        Assert.That(m.Size, Is.EqualTo(1 + vit.Config.Tokens));
        Assert.That(m.IsKept(0), Is.True, "CLS is pinned");
        for (int i = 0; i < inner.Size; i++) Assert.That(m.IsKept(i + 1), Is.EqualTo(inner.IsKept(i)));
        Assert.That(m.KeptCount, Is.EqualTo(1 + vit.Config.Tokens / 2));
    }

    [Test]
    public void Detector_refuses_sbp_with_training_batch_norm()
    {
        var c = FrameDetectorConfig.DetNano with { FreezeBatchNorm = false };
        var m = Own(new FrameDetector(c, new RandomSource(3), Device));
        using var scope = TensorScope.Begin();
        var x = Tensor.FromArray(Input(m).Data, new Shape(Input(m).Shape), Device);
        Assert.That(() => m.Forward(x, Policy(SbpPlacement.BlockOutput, RegionMode.Oracle), 0),
            Throws.InvalidOperationException.With.Message.Contains("frozen batch norm"));
    }

    [Test]
    public void Detector_batch_norm_is_frozen_but_its_affine_trains()
    {
        var m = (FrameDetector)Build("det-nano");
        var bn = m.Backbone.Stem.Bn1;
        var before = bn.RunningMean.ToArray();
        var r = Run(m, Input(m, batch: 2), null);
        Assert.That(bn.Frozen, Is.True);
        Assert.That(bn.RunningMean.ToArray(), Is.EqualTo(before), "running statistics stay fixed");
        Assert.That(r.Grads["backbone.stem.bn1.weight"], Has.Some.Not.EqualTo(0f), "the affine weight gets a gradient");
    }
}
