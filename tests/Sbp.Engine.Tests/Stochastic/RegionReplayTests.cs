using Sbp.Autograd;
using Sbp.Engine.Tests.Support;
using Sbp.Rng;
using Sbp.Stochastic;
using Sbp.Tensors;

namespace Sbp.Engine.Tests.Stochastic;

/// <summary>
/// A region that re-runs its body in backward (recompute, checkpoint) replays the random masks its
/// forward drew, gathered to the positions it re-runs on. These tests pin what a body that does not
/// repeat itself is told, and that masks over the batch axis follow the region there too.
/// </summary>
public class RegionReplayTests : RegionTest
{
    const string SameRandomOps = " at this point. A region body must run the same random ops on every call (its control flow may not depend on the step).";

    /// <summary>Runs a region whose body behaves differently on its second call (the re-run in backward) and returns what backward throws.</summary>
    SbpRegionException ReRunThrows(RegionMode mode, Func<Tensor, Tensor, bool, Tensor> body)
    {
        var (x, w) = Inputs();
        int calls = 0;
        using var tape = Tape.Begin();
        var y = SbpRegion.Run("changes", x, 1, KeepMask.Strided(8, 2, 1), h => body(h, w, ++calls > 1), new RegionOptions(mode));
        var e = Assert.Throws<SbpRegionException>(() => tape.Backward(Ops.Sum(y)));
        Assert.That(calls, Is.EqualTo(2), "the forward call and the re-run in backward");
        return e!;
    }

    [Test]
    public void AReRunThatDrawsAnExtraMaskIsRefused()
    {
        var rng = new RandomSource(7);
        var e = ReRunThrows(RegionMode.Recompute, (h, w, again) =>
        {
            var y = Ops.Dropout(Ops.Linear(h, w), 0.25f, rng);
            return again ? Ops.Dropout(y, 0.25f, rng) : y;
        });
        Assert.That(e.Message, Is.EqualTo("dropout: the re-run of an SBP region in backward asked for a dropout mask [2, 4, 4] but the forward drew no more masks" + SameRandomOps));
    }

    [TestCase(RegionMode.Recompute, "[2, 4, 4]")]
    [TestCase(RegionMode.Checkpoint, "[2, 8, 4]")]
    public void AReRunThatDrawsAnotherMaskIsRefused(RegionMode mode, string forwardShape)
    {
        var rng = new RandomSource(7);
        var e = ReRunThrows(mode, (h, w, again) =>
            again ? Ops.DropPath(Ops.Linear(h, w), 0.25f, rng) : Ops.Dropout(Ops.Linear(h, w), 0.25f, rng));
        Assert.That(e.Message, Does.StartWith("drop_path: the re-run of an SBP region in backward asked for a drop_path mask [2, 1, 1] but the forward drew a dropout mask " + forwardShape + SameRandomOps));
    }

    [Test]
    public void AReRunThatDrawsAMaskOfAnotherShapeIsRefused()
    {
        var rng = new RandomSource(7);
        var e = ReRunThrows(RegionMode.Recompute, (h, w, again) =>
            Ops.Dropout(again ? Ops.Pad(Ops.Linear(h, w), [0, 1]) : Ops.Linear(h, w), 0.25f, rng));
        Assert.That(e.Message, Is.EqualTo("dropout: the re-run of an SBP region in backward asked for a dropout mask [2, 4, 5] but the forward drew a dropout mask [2, 4, 4]" + SameRandomOps));
    }

    [Test]
    public void AReRunWhoseOutputChangesShapeIsRefused()
    {
        var e = ReRunThrows(RegionMode.Recompute, (h, w, again) => again ? Ops.Pad(Ops.Linear(h, w), [0, 1]) : Ops.Linear(h, w));
        Assert.That(e.Message, Is.EqualTo(
            "SBP region 'changes': re-running the body in backward on an input [2, 4, 4] gave [2, 4, 5], expected [2, 4, 4]. " +
            "A region body must derive its sizes from its input's shape; use sparse-cache mode for bodies that cannot run on the kept slice."));
    }

    [TestCase(RegionMode.SparseCache)]
    [TestCase(RegionMode.Recompute)]
    [TestCase(RegionMode.Checkpoint)]
    public void MasksOverTheBatchAxisAreReplayedAtTheKeptSamples(RegionMode mode)
    {
        // The region on axis 0 (the samples): dropout's and drop path's masks carry that axis, so a
        // re-run on the kept samples must replay the kept samples' masks. The oracle: plain backprop of
        // the same body with the same random stream, the gradient masked at the output.
        var x = T(Rand.Uniform(23, 6 * 3 * 4), 6, 3, 4);
        var mask = KeepMask.FromIndices(6, [1, 2, 5]);
        static Tensor Body(Tensor h, Tensor w, RandomSource rng) => Ops.DropPath(Ops.Dropout(Ops.Linear(h, w), 0.5f, rng), 0.5f, rng);
        (float[] X, float[] W) Gradients(bool oracle)
        {
            var xi = T(x.ToArray(), 6, 3, 4);
            xi.RequiresGrad = true;
            var w = T(Rand.Uniform(24, 16, -0.5f, 0.5f), 4, 4);
            w.RequiresGrad = true;
            var rng = new RandomSource(11);
            using var tape = Tape.Begin();
            var y = oracle ? Ops.GradMask(Body(xi, w, rng), 0, mask) : SbpRegion.Run("samples", xi, 0, mask, h => Body(h, w, rng), new RegionOptions(mode));
            tape.Backward(Ops.Sum(Ops.Mul(y, y)));
            return (xi.Grad!.ToArray(), w.Grad!.ToArray());
        }
        var (sbpX, sbpW) = Gradients(oracle: false);
        var (refX, refW) = Gradients(oracle: true);
        Assert.That(refX.Count(v => v != 0), Is.GreaterThan(0), "some kept sample survives both drops");
        Assert.That(sbpX, Is.EqualTo(refX).Within(1e-5f));
        Assert.That(sbpW, Is.EqualTo(refW).Within(1e-5f));
    }
}
