using Sbp.Models.Architectures;
using Sbp.Rng;
using Sbp.Stochastic;

namespace Sbp.Models.Tests.Architectures;

/// <summary>
/// The region engine's modes against the Oracle on whole models: for a fixed mask, the forward
/// equals plain backprop exactly and every parameter and input gradient equals the Oracle
/// (ordinary backprop with GradMask at each region output). Needs the SBP region engine (issue 4).
/// </summary>
[Category("sbp")]
public sealed class SbpModeTests : ModelTestBase
{
    public static IEnumerable<TestCaseData> Cases()
    {
        var models = new (string Config, SbpPlacement Placement, MaskKind Kind, bool Shared)[]
        {
            ("swin-nano", SbpPlacement.BlockOutput, MaskKind.Strided, true),
            ("vit-nano", SbpPlacement.BranchOutput, MaskKind.Grid, true),
            ("vit-nano", SbpPlacement.BranchOutput, MaskKind.Random, false),
            ("det-nano", SbpPlacement.BlockOutput, MaskKind.Strided, true),
            ("det-nano", SbpPlacement.BlockOutput, MaskKind.Random, false),
            ("r21d-nano", SbpPlacement.BlockOutput, MaskKind.Strided, true),
            ("r21d-nano", SbpPlacement.BlockOutput, MaskKind.Random, false),
        };
        foreach (var (config, placement, kind, shared) in models)
            foreach (var mode in new[] { RegionMode.SparseCache, RegionMode.Recompute, RegionMode.Checkpoint })
                yield return new TestCaseData(config, placement, kind, shared, mode).SetName($"{config} {kind}{(shared ? "" : " per-layer")} {mode} equals the oracle");
    }

    [TestCaseSource(nameof(Cases))]
    public void Mode_matches_the_oracle(string config, SbpPlacement placement, MaskKind kind, bool shared, RegionMode mode)
    {
        var m = Build(config);
        var input = Input(m, batch: 2);
        var plain = Run(m, input, null);
        var oracle = Run(m, input, Policy(placement, RegionMode.Oracle, kind, shared: shared));
        var sbp = Run(m, input, Policy(placement, mode, kind, shared: shared));
        Assert.That(sbp.Output, Is.EqualTo(plain.Output), "the forward must not change with SBP");
        Assert.That(sbp.Loss, Is.EqualTo(plain.Loss));
        AssertSameGrads($"{config} {mode}", sbp, oracle);
    }

    /// <summary>
    /// swin-micro: windows of 4 frames (2 kept), shifted by 2, 8 x 16 x 16 tokens, drop path and head
    /// dropout on: two identical models (same seed) so both draw the same random masks.
    /// </summary>
    [TestCase(RegionMode.SparseCache)]
    [TestCase(RegionMode.Recompute)]
    public void Swin_micro_matches_the_oracle(RegionMode mode)
    {
        var a = Build("swin-micro", seed: 3);
        var b = Build("swin-micro", seed: 3);
        var input = Input(a, batch: 1);
        var oracle = Run(a, input, Policy(SbpPlacement.BlockOutput, RegionMode.Oracle));
        var sbp = Run(b, input, Policy(SbpPlacement.BlockOutput, mode));
        Assert.That(sbp.Output, Is.EqualTo(oracle.Output));
        AssertSameGrads($"swin-micro {mode}", sbp, oracle);
    }

    [TestCase("swin-nano", SbpPlacement.BlockOutput, RegionMode.Recompute)]
    [TestCase("swin-nano", SbpPlacement.BlockOutput, RegionMode.Checkpoint)]
    [TestCase("vit-nano", SbpPlacement.BranchOutput, RegionMode.Recompute)]
    [TestCase("vit-nano", SbpPlacement.BranchOutput, RegionMode.Checkpoint)]
    [TestCase("det-nano", SbpPlacement.BlockOutput, RegionMode.Recompute)]
    [TestCase("det-nano", SbpPlacement.BlockOutput, RegionMode.Checkpoint)]
    public void Keep_one_is_plain_backprop(string config, SbpPlacement placement, RegionMode mode)
    {
        var m = Build(config);
        var input = Input(m, batch: 2);
        var plain = Run(m, input, null);
        var keepAll = Run(m, input, Policy(placement, mode, MaskKind.Random, keep: 1.0));
        Assert.That(keepAll.Output, Is.EqualTo(plain.Output));
        AssertSameGrads($"{config} keep 1 ({mode})", keepAll, plain, 1e-5, 1e-6);
    }

    /// <summary>
    /// Per-layer strided masks with offsets drawn per step: blocks see different frame offsets, so
    /// the rolled (shifted) windows keep different frames than their neighbours; with the 1/keep rescale.
    /// </summary>
    [TestCase(RegionMode.SparseCache)]
    [TestCase(RegionMode.Recompute)]
    public void Swin_per_layer_offsets_and_rescale_match_the_oracle(RegionMode mode)
    {
        var m = Build("swin-nano");
        var input = Input(m, batch: 2);
        SbpPolicy P(RegionMode r) => new(new KeepMaskPolicy(MaskKind.Strided, 0.5, Seed: 5) { RandomOffset = true, Scope = MaskScope.Layer },
            SbpPlacement.BlockOutput, r, Rescale: true);
        var masks = Enumerable.Range(0, 4).Select(l => P(mode).Masks.Next(1, l, 4)).ToList();
        Assert.That(masks.Distinct().Count(), Is.GreaterThan(1), "the seed must give blocks different offsets");
        var oracle = Run(m, input, P(RegionMode.Oracle), step: 1);
        var sbp = Run(m, input, P(mode), step: 1);
        Assert.That(sbp.Output, Is.EqualTo(oracle.Output));
        AssertSameGrads($"swin-nano per-layer {mode}", sbp, oracle);
    }

    /// <summary>Drop path inside a region draws random masks: re-running the region (Recompute) must reuse them. Two identical models, one per mode.</summary>
    [TestCase(RegionMode.SparseCache)]
    [TestCase(RegionMode.Recompute)]
    public void Swin_with_drop_path_matches_the_oracle(RegionMode mode)
    {
        var c = VideoSwinConfig.SwinNano with { DropPath = 0.5f };
        var a = Own(new VideoSwinTransformer(c, new RandomSource(9), Device));
        var b = Own(new VideoSwinTransformer(c, new RandomSource(9), Device));
        var input = Input(a, batch: 4);
        var oracle = Run(a, input, Policy(SbpPlacement.BlockOutput, RegionMode.Oracle));
        var sbp = Run(b, input, Policy(SbpPlacement.BlockOutput, mode));
        Assert.That(sbp.Output, Is.EqualTo(oracle.Output));
        AssertSameGrads($"swin-nano drop path {mode}", sbp, oracle);
    }
}
