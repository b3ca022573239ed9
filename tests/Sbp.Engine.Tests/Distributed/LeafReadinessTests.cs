using Sbp.Autograd;
using Sbp.Engine.Tests.Support;
using Sbp.Stochastic;
using Sbp.Tensors;

namespace Sbp.Engine.Tests.Distributed;

/// <summary>The tape tells an observer when each leaf's gradient is final: once, and only when no op left can add to it.</summary>
public class LeafReadinessTests
{
    /// <summary>Records, at each report, the leaf and a copy of its gradient then (null when none).</summary>
    sealed class Recorder : IGradientReadyObserver
    {
        public readonly List<(Tensor Leaf, float[]? Grad)> Ready = [];
        public int Progress;
        public void GradientReady(Tensor leaf) => Ready.Add((leaf, leaf.Grad?.ToArray()));
        public void BackwardProgress() => Progress++;
    }

    static Tensor Param(int seed, params int[] shape)
    {
        var t = Tensor.FromArray(Rand.Uniform(seed, new Shape(shape).Numel is var n ? (int)n : 0), new Shape(shape)).DetachFromScope();
        t.RequiresGrad = true;
        return t;
    }

    [Test]
    public void LeavesAreReportedOnceInReverseUseOrderWithTheirFinalGradient()
    {
        using var scope = TensorScope.Begin();
        var x = Tensor.FromArray(Rand.Uniform(1, 4 * 3), new Shape(4, 3));
        var w1 = Param(2, 5, 3);
        var w2 = Param(3, 2, 5);
        var unused = Param(4, 7);
        var recorder = new Recorder();
        using (var tape = Tape.Begin())
        {
            // w1 is used twice (its gradient is final only after the first use's backward).
            var h = Ops.Gelu(Ops.Linear(x, w1));
            var y = Ops.Linear(Ops.Add(h, Ops.Linear(x, w1)), w2);
            tape.GradientObserver = recorder;
            tape.Backward(Ops.Sum(y));
            Assert.That(recorder.Progress, Is.EqualTo(tape.Nodes.Count), "one progress call per recorded op");
        }
        Assert.That(recorder.Ready.Select(r => r.Leaf), Is.EqualTo(new[] { w2, w1 }), "w2 first (used last), each once; a leaf no op took is not reported");
        foreach (var (leaf, grad) in recorder.Ready) Assert.That(grad, Is.EqualTo(leaf.Grad!.ToArray()), "the gradient at the report is the final one");
        foreach (var t in new[] { w1, w2, unused }) { t.Grad?.Dispose(); t.Dispose(); }
    }

    [TestCase(RegionMode.Checkpoint)]
    [TestCase(RegionMode.Recompute)]
    public void ALeafAlsoUsedInsideARegionReRunIsHeldUntilTheReRunAddedToIt(RegionMode mode)
    {
        // w is used inside a re-run region (its own tape adds to w.Grad during the region's backward) and again after it:
        // the outer tape alone would call w final after the later use, before the region re-ran.
        using var scope = TensorScope.Begin();
        var x = Tensor.FromArray(Rand.Uniform(5, 2 * 8 * 4), new Shape(2, 8, 4));
        x.RequiresGrad = true;
        var w = Param(6, 4, 4);
        var recorder = new Recorder();
        using (var tape = Tape.Begin())
        {
            var y = SbpRegion.Run("r", x, 1, KeepMask.Strided(8, 2, 0), t => Ops.Gelu(Ops.Linear(t, w)), new RegionOptions(mode));
            var z = Ops.Linear(y, w);
            tape.GradientObserver = recorder;
            tape.Backward(Ops.Sum(z));
        }
        var reported = recorder.Ready.Where(r => ReferenceEquals(r.Leaf, w)).ToList();
        Assert.That(reported, Has.Count.EqualTo(1));
        Assert.That(reported[0].Grad, Is.EqualTo(w.Grad!.ToArray()), "reported after the re-run added its part");
        w.Grad.Dispose();
        w.Dispose();
        x.Grad?.Dispose();
    }
}
