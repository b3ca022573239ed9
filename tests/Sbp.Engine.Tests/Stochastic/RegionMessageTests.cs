using Sbp.Autograd;
using Sbp.Engine.Tests.Support;
using Sbp.Memory;
using Sbp.Stochastic;
using Sbp.Tensors;

namespace Sbp.Engine.Tests.Stochastic;

/// <summary>
/// A region's refusals are part of its interface: each names the region, what the body did, the
/// shapes and positions involved, and the fix. These tests pin every message in full, in every
/// caching mode (RegionFailureTests checks what a failure leaves behind, with a fragment of each).
/// </summary>
public class RegionMessageTests : RegionTest
{
    const string Moved =
        "SBP region 'failing': the body moves positions along the region's dimension: the kept input positions [{0}] come out at [{1}], " +
        "not at the requested [{0}], and the movement is not a roll that the region can undo. The mask applies to the output's positions " +
        "(docs/SBP.md): return each position where it came in (undo the movement inside the body), or end the region before the op that moves them.";

    static readonly Dictionary<string, string> Expected = new()
    {
        ["refused_mixing_op"] =
            "SBP region 'failing': sum mixes positions along axis 1 of its input 0 [2, 8, 4], which carries the region's dimension (it is summed, " +
            "averaged or maximized over). Ops that mix positions along the region's dimension (convolutions with kernel > 1 along it, batch norm " +
            "in training mode, pooling or reductions across it) cannot run inside a region: move the op out of the region (end the region before " +
            "it), or run it over another dimension.",
        ["refused_reshape_that_interleaves"] =
            "SBP region 'failing': reshape to [2, 4, 2, 4] splits or interleaves the region's dimension (axis 1: 2 of 8 kept [1, 5] of [2, 8, 4]) " +
            "so that kept positions are no longer whole slices of one axis. When the dimension is cut into windows, every window must keep the " +
            "same offsets: use a strided mask whose stride divides the window (or a mask drawn once per window and repeated), or make the window " +
            "cover the whole dimension.",
        ["output_without_the_dimension"] =
            "SBP region 'failing': the body's output [4, 4] does not carry the region's dimension: it was not computed from the region input by " +
            "ops that keep the region dimension (a reduction, a mixing op, Detach or a tensor from outside).",
        ["output_of_another_size"] =
            "SBP region 'failing': the body's output [2, 10, 4] does not carry the region's dimension: it has 10 positions along the region's " +
            "dimension (axis 1) where the input and the mask have 8; the mask applies to the output's positions, so the body must return as many " +
            "(crop what it padded).",
        ["output_moved_not_by_a_roll"] = string.Format(Moved, "1, 3, 5, 7", "2, 3, 6, 7"),
        ["nested_region"] = "SBP region 'inner' was started inside region 'failing'; regions do not nest. End the outer region first.",
    };

    static IEnumerable<TestCaseData> Cases() =>
        RegionFailureTests.Cases.Where(c => Expected.ContainsKey(c.Name)).Select(c => new TestCaseData(c).SetName($"RefusalsSayWhatAndHow({c.Name})"));

    [TestCaseSource(nameof(Cases))]
    public void RefusalsSayWhatAndHow(RegionFailureTests.FailureCase c)
    {
        foreach (var mode in new[] { RegionMode.SparseCache, RegionMode.Recompute, RegionMode.Checkpoint })
        {
            using var scope = TensorScope.Begin();
            var (x, w) = Inputs();
            using var tape = Tape.Begin();
            var e = Assert.Throws<SbpRegionException>(() => SbpRegion.Run("failing", x, 1, KeepMask.Strided(8, c.Stride, 1), h => c.Body(h, w), new RegionOptions(mode)));
            Assert.That(e!.Message, Is.EqualTo(Expected[c.Name]), $"{c.Name} in {mode}");
        }
    }

    [Test]
    public void ArgumentsAreCheckedBeforeAnythingRuns()
    {
        var (x, _) = Inputs();
        using var tape = Tape.Begin();
        Assert.Throws<ArgumentNullException>(() => SbpRegion.Run(null!, x, 1, null, h => h));
        Assert.Throws<ArgumentException>(() => SbpRegion.Run(" ", x, 1, null, h => h));
        Assert.Throws<ArgumentNullException>(() => SbpRegion.Run("r", null!, 1, null, h => h));
        Assert.Throws<ArgumentNullException>(() => SbpRegion.Run("r", x, 1, null, null!));
        var size = Assert.Throws<ShapeMismatchException>(() => SbpRegion.Run("r", x, 1, KeepMask.All(5), h => h));
        Assert.That(size!.Message, Is.EqualTo("SBP region 'r': the keep mask covers 5 positions but dimension 1 of the input [2, 8, 4] has 8; draw the mask over that dimension."));
        var none = Assert.Throws<ArgumentException>(() => SbpRegion.Run("r", x, -2, KeepMask.FromIndices(8, []), h => h));
        Assert.That(none!.Message, Is.EqualTo("SBP region 'r': the keep mask keeps no position; keep at least one."));
        Assert.That(tape.Nodes, Is.Empty);
    }

    [Test]
    public void AMovedOutputListsAtMostTwelvePositions()
    {
        // 32 positions, kept every other one: the perfect shuffle puts the 16 kept positions elsewhere.
        using var scope = TensorScope.Begin();
        var (x, w) = Inputs(32);
        using var tape = Tape.Begin();
        var e = Assert.Throws<SbpRegionException>(() => SbpRegion.Run("failing", x, 1, KeepMask.Strided(32, 2, 1),
            h => Ops.Reshape(Ops.Permute(Ops.Reshape(Ops.Linear(h, w), 2, 2, 16, 4), 0, 2, 1, 3), 2, 32, 4)));
        string requested = string.Join(", ", Enumerable.Range(0, 12).Select(i => 2 * i + 1)) + ", ...";
        string movedTo = string.Join(", ", new[] { 2, 3, 6, 7, 10, 11, 14, 15, 18, 19, 22, 23 }) + ", ...";
        Assert.That(e!.Message, Is.EqualTo(string.Format(Moved, requested, movedTo)));
    }

    [Test]
    public void ARollingBodyIsUndoneAndReported()
    {
        // The body rolls by 3: the region runs it on the input positions that land on the requested ones.
        using var scope = TensorScope.Begin();
        var (x, w) = Inputs();
        using var tape = Tape.Begin();
        var mask = KeepMask.FromIndices(8, [0, 1, 5]);
        var y = SbpRegion.Run("rolls", x, 1, mask, h => Ops.Linear(Ops.Roll(h, [3], [1]), w));
        var report = tape.Regions.Single(r => r.Name == "rolls");
        Assert.That(report.Note, Is.EqualTo("the body rolls the dimension; kept input positions [2, 5, 6]"));
        Assert.That(report.Kept, Is.EqualTo(3));
        tape.Backward(Ops.Sum(y));
        // The oracle: the same body on plain backprop with the gradient masked at the output.
        var x2 = T(x.ToArray(), 2, 8, 4);
        x2.RequiresGrad = true;
        using var oracle = Tape.Begin();
        var masked = Ops.GradMask(Ops.Linear(Ops.Roll(x2, [3], [1]), w), 1, mask);
        oracle.Backward(Ops.Sum(masked));
        Assert.That(x.Grad!.ToArray(), Is.EqualTo(x2.Grad!.ToArray()).Within(1e-6f));
    }

    [Test]
    public void AttentionSaysWhichAxesItSupports()
    {
        using var scope = TensorScope.Begin();
        using var tape = Tape.Begin();
        static Tensor Heads(Tensor t) => Ops.Reshape(t, t.Shape[0], 1, t.Shape[1], t.Shape[2]);
        // The region on the batch axis of q only (k and v come from outside).
        var x = T(Rand.Uniform(5, 6 * 3 * 4), 6, 3, 4);
        x.RequiresGrad = true;
        var kv = T(Rand.Uniform(6, 6 * 3 * 4), 6, 1, 3, 4);
        var batch = Assert.Throws<SbpRegionException>(() => SbpRegion.Run("attn", x, 0, KeepMask.Strided(6, 2, 1), h => Ops.ScaledDotProductAttention(Heads(h), kv, kv)));
        Assert.That(batch!.Message, Is.EqualTo(
            "SBP region 'attn': scaled_dot_product_attention gets the region's dimension on axis 0 of some of q, k, v but not all (input 1 [6, 1, 3, 4]: none). " +
            "Ops that mix positions along the region's dimension (convolutions with kernel > 1 along it, batch norm in training mode, pooling or " +
            "reductions across it) cannot run inside a region: move the op out of the region (end the region before it), or run it over another dimension."));
        // The region on the key rows (q comes from outside).
        var seq = T(Rand.Uniform(7, 2 * 6 * 4), 2, 6, 4);
        seq.RequiresGrad = true;
        var q = T(Rand.Uniform(8, 2 * 6 * 4), 2, 1, 6, 4);
        var keys = Assert.Throws<SbpRegionException>(() => SbpRegion.Run("attn", seq, 1, KeepMask.Strided(6, 2, 1), h => Ops.ScaledDotProductAttention(q, Heads(h), Heads(h))));
        Assert.That(keys!.Message, Does.StartWith(
            "SBP region 'attn': scaled_dot_product_attention gets the region's dimension on axis 2 of its input 1 [2, 1, 6, 4]; attention supports it on the query " +
            "rows (axis 2 of q: keys and values stay dense) or on the batch and head axes."));
    }

    [Test]
    public void RowWiseOpsRefuseARegionOnTheAxisTheyMix()
    {
        // Linear, softmax and layer norm name the axis they mix from the end (-1): a region there is refused.
        var x = T(Rand.Uniform(11, 2 * 3 * 8), 2, 3, 8);
        x.RequiresGrad = true;
        var w = T(Rand.Uniform(12, 4 * 8), 4, 8);
        w.RequiresGrad = true;
        var mask = KeepMask.Strided(8, 2, 1);
        using var tape = Tape.Begin();
        string Refusal(Func<Tensor, Tensor> body) => Assert.Throws<SbpRegionException>(() => SbpRegion.Run("features", x, 2, mask, body))!.Message;
        Assert.That(Refusal(h => Ops.Linear(h, w)), Is.EqualTo("SBP region 'features': linear mixes positions along axis 2 of its input 0 [2, 3, 8], which carries the region's dimension." + MixingAdvice));
        Assert.That(Refusal(h => Ops.Softmax(h, -1)), Is.EqualTo("SBP region 'features': softmax mixes positions along axis 2 of its input 0 [2, 3, 8], which carries the region's dimension." + MixingAdvice));
        Assert.That(Refusal(h => Ops.LayerNorm(h, [8])), Is.EqualTo("SBP region 'features': layer_norm mixes positions along axis 2 of its input 0 [2, 3, 8], which carries the region's dimension." + MixingAdvice));
        Assert.That(tape.Nodes, Is.Empty);
    }

    [Test]
    public void AnOpWithoutAnSbpRuleIsRefused()
    {
        // A user's op recorded without a rule: the region cannot know how it treats positions.
        var (x, _) = Inputs();
        using var tape = Tape.Begin();
        static Tensor Twice(Tensor h) => Tape.Record("my_twice", Ops.Mul(h, 2f).DetachFromScope(), [h], [], ctx => [Ops.Mul(ctx.Grad, 2f)]);
        var e = Assert.Throws<SbpRegionException>(() => SbpRegion.Run("custom", x, 1, KeepMask.Strided(8, 2, 1), Twice));
        Assert.That(e!.Message, Does.StartWith(
            "SBP region 'custom': my_twice cannot run on its input 0 [2, 8, 4], which carries the region's dimension on axis 1: the op has no SBP rule."));
    }

    [Test]
    public void AConcatOfTheDimensionWithItsTransposeIsRefused()
    {
        // x [2, 8, 8] with the region on axis 1; its transpose carries the region on axis 2.
        var x = T(Rand.Uniform(13, 2 * 8 * 8), 2, 8, 8);
        x.RequiresGrad = true;
        using var tape = Tape.Begin();
        var e = Assert.Throws<SbpRegionException>(() => SbpRegion.Run("concat", x, 1, KeepMask.Strided(8, 2, 1),
            h => Ops.Slice(Ops.Concat([h, Ops.Permute(h, 0, 2, 1)], 1), 1, 0, 8)));
        Assert.That(e!.Message, Does.StartWith(
            "SBP region 'concat': concat gets the region's dimension on axis 1 of some inputs and on axis 2 of its input 1 [2, 8, 8]."));
    }

    [TestCase(RegionMode.Recompute)]
    [TestCase(RegionMode.Checkpoint)]
    public void AReRunBodyThatReadsAComputedTensorFromOutsideIsRefused(RegionMode mode)
    {
        // A leaf from outside gets its gradient (the test below); a tensor computed outside would need
        // the outer tape's backward to go on through it, which a re-run in backward cannot do.
        using var scope = TensorScope.Begin();
        var (x, w) = Inputs();
        var leaf = T(Rand.Uniform(14, 4), 4);
        leaf.RequiresGrad = true;
        using var tape = Tape.Begin();
        var computed = Ops.Mul(leaf, 3f);
        var y = SbpRegion.Run("reads_computed", x, 1, KeepMask.Strided(8, 2, 1), h => Ops.Mul(Ops.Linear(h, w), computed), new RegionOptions(mode));
        var e = Assert.Throws<SbpRegionException>(() => tape.Backward(Ops.Sum(y)));
        Assert.That(e!.Message, Is.EqualTo(
            "SBP region 'reads_computed': its body used 1 tensor(s) from outside the region that need a gradient (not parameters): " +
            "a region that is re-run in backward (recompute, checkpoint) may read only its input and module parameters. " +
            "Pass the tensor in as the region input, or compute it inside the body."));
    }

    [Test]
    public void ReRunRegionsSayHowTheyReRun()
    {
        using var scope = TensorScope.Begin();
        var (x, w) = Inputs();
        using var tape = Tape.Begin();
        var mask = KeepMask.Strided(8, 2, 1);
        SbpRegion.Run("slice", x, 1, mask, h => Ops.Gelu(Ops.Linear(h, w)), new RegionOptions(RegionMode.Recompute));
        SbpRegion.Run("rolls", x, 1, mask, h => Ops.Linear(Ops.Roll(h, [1], [1]), w), new RegionOptions(RegionMode.Recompute));
        SbpRegion.Run("matmul", x, 1, mask, h => Ops.Matmul(h, Ops.Permute(h, 0, 2, 1)), new RegionOptions(RegionMode.Recompute));
        SbpRegion.Run("checkpoint", x, 1, mask, h => Ops.Linear(Ops.Roll(h, [1], [1]), w), new RegionOptions(RegionMode.Checkpoint));
        var frozen = T(Rand.Uniform(9, 2 * 8 * 4), 2, 8, 4);
        SbpRegion.Run("frozen", frozen, 1, mask, h => Ops.Gelu(h), new RegionOptions(RegionMode.Recompute));
        SbpRegion.Run("frozen_all", frozen, 0, null, h => Ops.Gelu(h), new RegionOptions(RegionMode.Checkpoint));
        var recompute = new RegionOptions(RegionMode.Recompute);
        SbpRegion.Run("pad_channels", x, 1, mask, h => Ops.Gelu(Ops.Pad(h, [1, 1])), recompute);
        SbpRegion.Run("pad_crop", x, 1, mask, h => Ops.Slice(Ops.Pad(Ops.Gelu(h), [0, 0, 1, 1]), 1, 1, h.Shape[1]), recompute);
        SbpRegion.Run("slice_whole", x, 1, mask, h => Ops.Gelu(Ops.Slice(h, 1, 0, h.Shape[1])), recompute);
        SbpRegion.Run("concat_channels", x, 1, mask, h => Ops.Gelu(Ops.Concat([h, h], 2)), recompute);
        var notes = tape.Regions.ToDictionary(r => r.Name, r => r);
        const string sliced = "input and random masks saved at kept positions; backward re-runs the body on the kept slice";
        Assert.That(notes["pad_channels"].Note, Is.EqualTo(sliced));
        Assert.That(notes["slice_whole"].Note, Is.EqualTo(sliced));
        Assert.That(notes["concat_channels"].Note, Is.EqualTo(sliced));
        Assert.That(notes["pad_crop"].Note, Is.EqualTo("re-run on the full input: pad reads positions outside the kept slice"));
        Assert.That(notes["slice"].Note, Is.EqualTo("input and random masks saved at kept positions; backward re-runs the body on the kept slice"));
        Assert.That(notes["rolls"].Note, Is.EqualTo("re-run on the full input: roll reads positions outside the kept slice"));
        Assert.That(notes["matmul"].Note, Does.StartWith("re-run on the full input: "));
        Assert.That(notes["checkpoint"].Note, Is.EqualTo("input saved in full; backward re-runs the region with sparse caching"));
        Assert.That((notes["frozen"].Note, notes["frozen"].Kept, notes["frozen"].Size), Is.EqualTo(("nothing in the body requires grad", 4, 8)));
        Assert.That((notes["frozen_all"].Note, notes["frozen_all"].Kept, notes["frozen_all"].Size), Is.EqualTo(("nothing in the body requires grad", 2, 2)));
    }

    [TestCase(RegionMode.SparseCache)]
    [TestCase(RegionMode.Recompute)]
    [TestCase(RegionMode.Checkpoint)]
    public void AFrozenRegionHoldsNothingAndItsOutputStaysUsable(RegionMode mode)
    {
        // Nothing in the body requires grad: the region records nothing, says so, and hands its output on.
        using var scope = TensorScope.Begin();
        var frozen = T(Rand.Uniform(15, 2 * 8 * 4), 2, 8, 4);
        using var tape = Tape.Begin();
        var y = SbpRegion.Run("frozen", frozen, 1, KeepMask.Strided(8, 2, 1), h => Ops.Gelu(h), new RegionOptions(mode));
        using (Tape.NoGrad())
            Assert.That(y.ToArray(), Is.EqualTo(Ops.Gelu(frozen).ToArray()));
        var report = tape.Regions.Single();
        Assert.That((report.Note, report.SavedBytes, tape.SavedBytes, tape.Nodes.Count), Is.EqualTo(("nothing in the body requires grad", 0L, 0L, 0)));
        var (x, w) = Inputs();
        SbpRegion.Run("plain", x, 1, KeepMask.Strided(8, 2, 1), h => Ops.Linear(h, w), new RegionOptions(mode));
        Assert.That(tape.Regions.Single(r => r.Name == "plain").Note, mode == RegionMode.SparseCache ? Is.Null : Is.Not.Null, "a body that keeps positions in place needs no note in sparse caching");
    }

    [TestCase(RegionMode.Recompute)]
    [TestCase(RegionMode.Checkpoint)]
    public void AReRunBodyThatReadsATensorFromOutsideGivesItTheOraclesGradient(RegionMode mode)
    {
        using var scope = TensorScope.Begin();
        var (x, w) = Inputs();
        var mask = KeepMask.Strided(8, 2, 1);
        float[] Gradient(bool oracle)
        {
            var outside = T(Rand.Uniform(10, 4), 4);
            outside.RequiresGrad = true;
            using var tape = Tape.Begin();
            var y = oracle
                ? Ops.GradMask(Ops.Mul(Ops.Linear(x, w), outside), 1, mask)
                : SbpRegion.Run("reads_outside", x, 1, mask, h => Ops.Mul(Ops.Linear(h, w), outside), new RegionOptions(mode));
            tape.Backward(Ops.Sum(y));
            return outside.Grad!.ToArray();
        }
        Assert.That(Gradient(oracle: false), Is.EqualTo(Gradient(oracle: true)).Within(1e-5f));
    }

    [Test]
    public void ReportsReadAsOneLine()
    {
        var full = new RegionReport("block0", RegionMode.SparseCache, 4, 8, 2048, 4096, "the body rolls the dimension; kept input positions [2, 5]");
        Assert.That(full.ToString(), Is.EqualTo(
            $"block0: SparseCache, kept 4/8, saved {MemoryPool.FormatBytes(2048)} (full backprop {MemoryPool.FormatBytes(4096)}); the body rolls the dimension; kept input positions [2, 5]"));
        var bare = new RegionReport("block1", RegionMode.Checkpoint, 2, 8, 512, null);
        Assert.That(bare.ToString(), Is.EqualTo($"block1: Checkpoint, kept 2/8, saved {MemoryPool.FormatBytes(512)}"));
        Assert.That((full.KeepRatio, bare.KeepRatio, new RegionReport("empty", RegionMode.Recompute, 0, 0, 0, 0).KeepRatio), Is.EqualTo((0.5, 0.25, 1.0)));
    }
}
