using Sbp.Autograd;
using Sbp.Engine.Tests.Support;
using Sbp.Stochastic;
using Sbp.Tensors;

namespace Sbp.Engine.Tests.Stochastic;

/// <summary>
/// The SBP rules at their edges: what an op's rule refuses (a user's op with a rule that does not fit
/// its output, inputs that carry the region differently), how re-run regions name their nodes and
/// report, and a rotation measured on a re-run (the other oracle cases are in RegionOpTests).
/// </summary>
public class RegionRuleTests : RegionTest
{
    string Refusal(Tensor x, int dim, Func<Tensor, Tensor> body)
    {
        using var tape = Tape.Begin();
        var e = Assert.Throws<SbpRegionException>(() => SbpRegion.Run("rule", x, dim, KeepMask.Strided(x.Shape[dim], 2, 1), body))!;
        Assert.That(tape.Nodes, Is.Empty);
        return e.Message;
    }

    [Test]
    public void InputsThatCarryTheRegionOnDifferentAxesAreRefused()
    {
        var x = T(Rand.Uniform(33, 2 * 8 * 8), 2, 8, 8);
        x.RequiresGrad = true;
        Assert.That(Refusal(x, 1, h => Ops.Add(h, Ops.Permute(h, 0, 2, 1))), Is.EqualTo(
            "SBP region 'rule': add gets the region's dimension on different axes or with different kept positions in its inputs (axis 2: 4 of 8 kept [1, 3, 5, 7] vs axis 1: 4 of 8 kept [1, 3, 5, 7])." + MixingAdvice));
    }

    [Test]
    public void ARegionTensorUsedAsAWeightIsRefused()
    {
        var x = T(Rand.Uniform(34, 8 * 4), 8, 4);
        x.RequiresGrad = true;
        var input = T(Rand.Uniform(35, 3 * 4), 3, 4);
        Assert.That(Refusal(x, 0, h => Ops.Linear(input, h)), Does.StartWith("SBP region 'rule': linear mixes positions along axis 0 of its input 1 [8, 4]"));
    }

    [Test]
    public void AUsersOpWhoseRuleDoesNotFitItsOutputIsRefused()
    {
        // An element-wise rule on an op that doubles the region's axis, and on one that saves a tensor of another size.
        var (x, _) = Inputs();
        static Tensor Doubled(Tensor h) => Tape.Record("my_doubled", Ops.Concat([h, h], 1).DetachFromScope(), [h], [], ctx => [ctx.Grad], SbpRule.Elementwise);
        Assert.That(Refusal(x, 1, Doubled), Does.StartWith("SBP region 'rule': my_doubled reduces or resizes axis 1 of its output [2, 16, 4], which carries the region's dimension (size 8)"));
        Tensor SavesAPart(Tensor h) => Tape.Record("my_part", Ops.Mul(h, 2f).DetachFromScope(), [h], [T(new float[2 * 5 * 4], 2, 5, 4)], ctx => [ctx.Grad], SbpRule.Elementwise);
        Assert.That(Refusal(x, 1, SavesAPart), Does.StartWith("SBP region 'rule': my_part saves a tensor [2, 5, 4] whose axis 1 neither spans the region's dimension (8) nor has size 1"));
    }

    [Test]
    public void RegionDimensionsAreCheckedAgainstTheInputsRank()
    {
        var (x, _) = Inputs();
        using var tape = Tape.Begin();
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => SbpRegion.Run("r", x, 3, null, h => h))!;
        Assert.That(e.Message, Does.StartWith("SBP region 'r': dimension 3 is out of range for a tensor of rank 3 (valid: -3..2)."));
    }

    [Test]
    public void CheckpointsNameTheirNodesAndReportWhatTheyKeep()
    {
        var (x, w) = Inputs();
        using var tape = Tape.Begin();
        var checkpoint = new RegionOptions(RegionMode.Checkpoint);
        SbpRegion.Run("sbp", x, 1, KeepMask.Strided(8, 4, 1), h => Ops.Linear(Ops.Roll(h, [1], [1]), w), checkpoint);
        SbpRegion.Run("plain", x, 1, null, h => Ops.Linear(h, w), checkpoint);
        Assert.That(tape.Nodes.Select(n => n.Op), Is.EqualTo(new[] { "sbp.checkpoint", "checkpoint" }));
        var reports = tape.Regions.ToDictionary(r => r.Name);
        Assert.That((reports["sbp"].Kept, reports["sbp"].Size, reports["sbp"].Note), Is.EqualTo((2, 8, "input saved in full; backward re-runs the region with sparse caching")));
        Assert.That((reports["plain"].Kept, reports["plain"].Size, reports["plain"].Note), Is.EqualTo((8, 8, "input saved in full; backward re-runs the region")));
    }

    [Test]
    public void ARollMeasuredInARecomputeRegionGivesTheOraclesGradient()
    {
        // Rolling by 3 with kept [0, 1, 5]: only the rotation the region measures (not its opposite) lands on
        // the request. A name no other test uses, so the rotation is measured here, not recalled from a hint
        // (RegionOpTests runs the same body in every mode, where the later modes recall it).
        var mask = KeepMask.FromIndices(8, [0, 1, 5]);
        float[] Gradient(bool oracle)
        {
            var (x, w) = Inputs();
            Tensor Body(Tensor h) => Ops.Linear(Ops.Roll(h, [3], [1]), w);
            using var tape = Tape.Begin();
            var y = oracle ? Ops.GradMask(Body(x), 1, mask) : SbpRegion.Run("rolls_measured_in_recompute", x, 1, mask, Body, new RegionOptions(RegionMode.Recompute));
            tape.Backward(Ops.Sum(Ops.Mul(y, y)));
            return x.Grad!.ToArray();
        }
        Assert.That(Gradient(oracle: false), Is.EqualTo(Gradient(oracle: true)).Within(1e-5f));
    }

    [Test]
    public void AttentionNamesTheLayoutOfAnInputThatCarriesTheRegionElsewhere()
    {
        // B = H = 4: k is q with batch and heads swapped, so it carries the region on axis 1 where q carries it on axis 0.
        var x = T(Rand.Uniform(36, 4 * 4 * 2 * 3), 4, 4, 2, 3);
        x.RequiresGrad = true;
        Assert.That(Refusal(x, 0, h => Ops.ScaledDotProductAttention(h, Ops.Permute(h, 1, 0, 2, 3), h)), Does.StartWith(
            "SBP region 'rule': scaled_dot_product_attention gets the region's dimension on axis 0 of some of q, k, v but not all (input 1 [4, 4, 2, 3]: axis 1: 2 of 4 kept [1, 3])"));
    }

    [Test]
    public void AMovedOutputOfTwelvePositionsListsThemAll()
    {
        // 24 positions, every other one kept: the perfect shuffle moves the 12 kept positions; all 12 are listed.
        var x = T(Rand.Uniform(37, 2 * 24 * 4), 2, 24, 4);
        x.RequiresGrad = true;
        var message = Refusal(x, 1, h => Ops.Reshape(Ops.Permute(Ops.Reshape(Ops.Gelu(h), 2, 2, 12, 4), 0, 2, 1, 3), 2, 24, 4));
        Assert.That(message, Does.Contain("the kept input positions [1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23] come out at ["));
        Assert.That(message, Does.Not.Contain("..."));
    }
}
