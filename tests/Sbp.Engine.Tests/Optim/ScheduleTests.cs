using Sbp.Optim;
using Sbp.Tensors;

namespace Sbp.Engine.Tests.Optim;

public class ScheduleTests
{
    [Test]
    public void WarmupCosineAtKeySteps()
    {
        var s = new WarmupCosine(1.0f, warmupSteps: 4, totalSteps: 12, minLr: 0.1f);
        Assert.That(s.LearningRate(0), Is.EqualTo(0.25f));
        Assert.That(s.LearningRate(1), Is.EqualTo(0.5f));
        Assert.That(s.LearningRate(3), Is.EqualTo(1.0f));
        Assert.That(s.LearningRate(4), Is.EqualTo(1.0f), "cosine starts at baseLr");
        Assert.That(s.LearningRate(6), Is.EqualTo((float)(0.1 + 0.9 * (1 + Math.Cos(Math.PI * 2 / 8)) / 2)));
        Assert.That(s.LearningRate(8), Is.EqualTo(0.55f).Within(1e-7), "half way");
        Assert.That(s.LearningRate(11), Is.EqualTo((float)(0.1 + 0.9 * (1 + Math.Cos(Math.PI * 7 / 8)) / 2)));
        Assert.That(s.LearningRate(12), Is.EqualTo(0.1f));
        Assert.That(s.LearningRate(1000), Is.EqualTo(0.1f));
        var noWarmup = new WarmupCosine(2f, 0, 10);
        Assert.That(noWarmup.LearningRate(0), Is.EqualTo(2f));
        Assert.That(noWarmup.LearningRate(10), Is.EqualTo(0f));
        Assert.That(() => new WarmupCosine(1f, 5, 4), Throws.InstanceOf<ArgumentOutOfRangeException>());
    }

    [Test]
    public void StepDecayAtKeySteps()
    {
        var s = new StepDecay(0.8f, stepSize: 3, gamma: 0.5f);
        Assert.That(Enumerable.Range(0, 8).Select(i => s.LearningRate(i)),
            Is.EqualTo(new[] { 0.8f, 0.8f, 0.8f, 0.4f, 0.4f, 0.4f, 0.2f, 0.2f }));
    }

    [Test]
    public void ApplySetsTheOptimizersRateForItsNextStep()
    {
        var device = Device.CreateCpu("schedule apply");
        using (var p = Tensor.Zeros(new Shape(2), device))
        using (var opt = new Sgd([("p", p)], 1f))
        {
            var s = new StepDecay(1f, 1, 0.5f);
            Assert.That(s.Apply(opt), Is.EqualTo(1f));
            opt.Step();
            Assert.That(s.Apply(opt), Is.EqualTo(0.5f));
            Assert.That(opt.LearningRate, Is.EqualTo(0.5f));
        }
        Assert.That(device.Pool.InUseBytes, Is.EqualTo(0));
    }
}
