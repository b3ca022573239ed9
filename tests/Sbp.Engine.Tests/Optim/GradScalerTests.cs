using Sbp.Autograd;
using Sbp.Engine.Tests.Support;
using Sbp.Optim;
using Sbp.Tensors;

namespace Sbp.Engine.Tests.Optim;

/// <summary>GradScaler against PyTorch's semantics: scaled then unscaled gradients, skipped steps, back-off and growth.</summary>
public class GradScalerTests : DeviceTest
{
    readonly List<(Tensor P, AdamW Opt)> _made = [];

    [TearDown]
    public void FreeModels()
    {
        foreach (var (p, opt) in _made)
        {
            opt.Dispose();
            p.ZeroGrad();
        }
        _made.Clear();
    }

    /// <summary>A parameter, an AdamW over it, and one backward of sum(p * w) (times the scaler's scale) with w given.</summary>
    (Tensor P, AdamW Opt) Model(float[] start)
    {
        var p = Tensor.FromArray(start, new Shape(start.Length), Device, Sbp.Memory.MemoryCategory.Parameter);
        p.RequiresGrad = true;
        var made = (p, new AdamW([("p", p)], 1e-2f, weightDecay: 0.01f));
        _made.Add(made);
        return made;
    }

    void Backward(Tensor p, float[] w, GradScaler scaler)
    {
        using var tape = Tape.Begin();
        tape.Backward(scaler.ScaleLoss(Ops.Sum(Ops.Mul(p, Tensor.FromArray(w, p.Shape, Device)))));
    }

    [Test]
    public void AScaledStepUpdatesExactlyAsAnUnscaledOne()
    {
        float[] start = [0.5f, -1.25f, 3f, 1e-3f], w = [1e-6f, -2f, 0.75f, 3e-5f];
        var (p, opt) = Model(start);
        var (q, plain) = Model(start);
        var scaler = new GradScaler();
        for (int step = 0; step < 3; step++)
        {
            Backward(p, w, scaler);
            Assert.That(p.Grad!.ToArray(), Is.EqualTo(w.Select(v => v * 65536f)), "backward sees the scaled loss");
            scaler.Unscale(opt);
            Assert.That(p.Grad.ToArray(), Is.EqualTo(w), "unscaled in place (a power of two: exact)");
            Assert.That(scaler.Step(opt), Is.True);
            scaler.Update();
            opt.ZeroGrad();

            using (var tape = Tape.Begin()) tape.Backward(Ops.Sum(Ops.Mul(q, Tensor.FromArray(w, q.Shape, Device))));
            plain.Step();
            plain.ZeroGrad();
        }
        Assert.That(p.ToArray(), Is.EqualTo(q.ToArray()));
        Assert.That((scaler.Scale, scaler.GrowthTracker), Is.EqualTo((65536f, 3)));
    }

    [Test]
    public void SkippedStepsLeaveWeightsAndOptimizerAloneAndHalveTheScale()
    {
        foreach (float bad in new[] { float.PositiveInfinity, float.NegativeInfinity, float.NaN })
        {
            var (p, opt) = Model([1f, 2f, 3f]);
            var scaler = new GradScaler(initScale: 1024f, growthInterval: 4);
            Backward(p, [1f, bad, 1f], scaler);
            Assert.That(scaler.Step(opt), Is.False, $"{bad}: skipped");
            scaler.Update();
            Assert.That(p.ToArray(), Is.EqualTo(new[] { 1f, 2f, 3f }));
            Assert.That((opt.StepCount, scaler.Scale, scaler.GrowthTracker), Is.EqualTo((0L, 512f, 0)));
        }
    }

    [Test]
    public void TheScaleGrowsAfterTheIntervalOfCleanStepsButNeverToInfinity()
    {
        var (p, opt) = Model([1f, 2f]);
        var scaler = new GradScaler(initScale: 8f, growthFactor: 2f, growthInterval: 3);
        var scales = new List<float>();
        for (int i = 0; i < 7; i++)
        {
            Backward(p, [0.5f, 0.25f], scaler);
            scaler.Step(opt);
            scaler.Update();
            opt.ZeroGrad();
            scales.Add(scaler.Scale);
        }
        Assert.That(scales, Is.EqualTo(new[] { 8f, 8f, 16f, 16f, 16f, 32f, 32f }));

        var big = new GradScaler(initScale: float.MaxValue / 1.5f, growthInterval: 1);
        Backward(p, [0f, 0f], big);
        big.Step(opt);
        big.Update();
        Assert.That(big.Scale, Is.EqualTo(float.MaxValue / 1.5f), "growing would overflow: kept");
    }

    [Test]
    public void MisuseIsNamedAndADisabledScalerPassesThrough()
    {
        var (p, opt) = Model([1f]);
        var scaler = new GradScaler();
        Assert.That(() => scaler.Update(), Throws.InvalidOperationException.With.Message.Contains("call Unscale or Step first"));
        Backward(p, [1f], scaler);
        scaler.Unscale(opt);
        Assert.That(() => scaler.Unscale(opt), Throws.InvalidOperationException.With.Message.Contains("once per step"));
        Assert.That(() => new GradScaler(backoffFactor: 1f), Throws.InstanceOf<ArgumentOutOfRangeException>().With.Message.Contains("backoffFactor"));

        var off = new GradScaler(enabled: false);
        opt.ZeroGrad();
        using var loss = Ops.Sum(p);
        Assert.That((off.Scale, ReferenceEquals(off.ScaleLoss(loss), loss)), Is.EqualTo((1f, true)));
        Backward(p, [1f], off);
        Assert.That(off.Step(opt), Is.True);
        Assert.That(opt.StepCount, Is.EqualTo(1L));
    }
}
