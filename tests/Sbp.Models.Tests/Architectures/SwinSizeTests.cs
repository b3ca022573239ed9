using Sbp.Models.Architectures;
using Sbp.Models.Training;
using Sbp.Rng;
using Sbp.Stochastic;

namespace Sbp.Models.Tests.Architectures;

/// <summary>
/// Video Swin trains under SBP at every clip size it accepts, including sizes whose token grid must be
/// padded to whole windows in time, height or width (a sample of the sizes here; `benchmarks -- sizes`
/// runs all of 32..112 px by 8 and 8..32 frames by 4). Where the grid is padded, SBP's gradients equal the oracle's.
/// </summary>
public sealed class SwinSizeTests : ModelTestBase
{
    VideoModel Swin(string config, int frames, int px) =>
        Own(ModelFactory.Create(config, new RandomSource(3), Device, numClasses: 4, frames, px, px));

    static SbpPolicy Policy(VideoModel model, double keep, RegionMode mode) =>
        Trainer.PolicyFor(new TrainConfig { Model = model.ConfigName, Mode = TrainMode.Sbp, Keep = keep, SbpCaching = mode, Coverage = SbpCoverage.AllBlocks }, model)!;

    // (frames, px): 12 frames are 6 token frames, padded to 8 for windows of 4; 40 and 56 px pad the spatial grid too.
    [TestCase("swin-micro", 12, 40, 0.5)]
    [TestCase("swin-micro", 20, 56, 0.25)]
    [TestCase("swin-micro", 8, 48, 0.5)]
    [TestCase("swin-nano", 12, 24, 0.5)]
    public void Sbp_gradients_equal_the_oracle_where_windows_are_padded(string config, int frames, int px, double keep)
    {
        // A fresh model (same seed) per run: drop path and head dropout then draw the same masks in each.
        var m = Swin(config, frames, px);
        var input = Input(m);
        var oracle = Run(m, input, Policy(m, keep, RegionMode.Oracle));
        foreach (var mode in new[] { RegionMode.SparseCache, RegionMode.Recompute })
        {
            m = Swin(config, frames, px);
            var policy = Policy(m, keep, mode);
            Assert.That(m.SbpProblem(policy), Is.Null, "accepted before training");
            var sbp = Run(m, input, policy);
            Assert.That(sbp.Output, Is.EqualTo(oracle.Output), $"{mode}: the forward is unchanged");
            AssertSameGrads($"{config} {frames}x{px} keep {keep} {mode}", sbp, oracle, 2e-4, 2e-5);
        }
    }

    [TestCase(8, 32)]
    [TestCase(16, 64)]
    [TestCase(28, 72)]
    [TestCase(32, 112)]
    public void Swin_micro_trains_a_step_at_sampled_sizes(int frames, int px)
    {
        var m = Swin("swin-micro", frames, px);
        var input = Input(m);
        foreach (var mode in new[] { RegionMode.SparseCache, RegionMode.Recompute })
        {
            var r = Run(m, input, Policy(m, 0.5, mode));
            Assert.That(float.IsFinite(r.Loss), $"{mode}");
            Assert.That(r.Grads.Values.SelectMany(g => g), Has.All.Matches<float>(float.IsFinite), $"{mode}");
            Assert.That(r.Grads["patch_embed.proj.weight"], Has.Some.Not.Zero, $"{mode}: gradients reach the first layer");
        }
    }
}
