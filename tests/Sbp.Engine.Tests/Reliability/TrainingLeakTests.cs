using Sbp.Autograd;
using Sbp.Engine.Tests.Support;
using Sbp.Memory;
using Sbp.Nn;
using Sbp.Optim;
using Sbp.Rng;
using Sbp.Stochastic;
using Sbp.Tensors;

namespace Sbp.Engine.Tests.Reliability;

/// <summary>
/// 200 training steps of a tiny model (Linear, LayerNorm, GELU, Dropout, AdamW), with and without
/// an SBP region: after every step the pool holds exactly the parameters and the optimizer state
/// (nothing in Temporary, SavedActivation, Gradient or Workspace) and the tape holds nothing.
/// </summary>
public class TrainingLeakTests
{
    const int Steps = 200, B = 4, N = 6, In = 8, H = 16, Out = 4;

    public enum Variant { Plain, SbpSparseCache, SbpRecompute, SbpCheckpoint, AnomalyModeOn }

    [TestCase(Variant.Plain)]
    [TestCase(Variant.SbpSparseCache)]
    [TestCase(Variant.SbpRecompute)]
    [TestCase(Variant.SbpCheckpoint)]
    [TestCase(Variant.AnomalyModeOn)]
    public void TwoHundredStepsLeaveOnlyParametersAndOptimizerState(Variant variant)
    {
        var device = Device.CreateCpu($"leak {variant}");
        var rng = new RandomSource(5);
        using var inProj = new Linear(In, H, rng, device: device);
        using var block = new Sequential(new LayerNorm(H, device: device), new Linear(H, H, rng, device: device),
            new Gelu(device: device), new Dropout(0.1f, new RandomSource(6), device: device));
        using var head = new Linear(H, Out, rng, device: device);
        var parameters = inProj.NamedParameters().Select(p => ("in." + p.Name, p.Tensor))
            .Concat(block.NamedParameters().Select(p => ("block." + p.Name, p.Tensor)))
            .Concat(head.NamedParameters().Select(p => ("head." + p.Name, p.Tensor))).ToList();
        using var opt = new AdamW(parameters, learningRate: 1e-2f);
        var pool = device.Pool;
        long parameterBytes = parameters.Sum(p => p.Item2.Bytes);
        Assert.That(pool.InUseBytes, Is.EqualTo(parameterBytes), "before training: the parameters only");
        var options = variant switch
        {
            Variant.SbpRecompute => new RegionOptions(RegionMode.Recompute),
            Variant.SbpCheckpoint => new RegionOptions(RegionMode.Checkpoint),
            _ => RegionOptions.Default,
        };
        bool region = variant is Variant.SbpSparseCache or Variant.SbpRecompute or Variant.SbpCheckpoint;
        var maskRng = new RandomSource(7);
        float first = float.NaN, last = float.NaN;
        using var anomalies = Tape.DetectAnomalies(variant == Variant.AnomalyModeOn);
        for (int step = 0; step < Steps; step++)
        {
            using (var scope = TensorScope.Begin())
            using (var tape = Tape.Begin())
            {
                var x = Tensor.FromArray(Rand.Uniform(1000 + step % 10, B * N * In), new Shape(B, N, In), device);
                var target = Tensor.FromArray(Rand.Uniform(2000 + step % 10, B * N * Out), new Shape(B, N, Out), device);
                var h = inProj.Forward(x);
                h = region
                    ? SbpRegion.Run("block", h, 1, KeepMask.Random(N, 3, maskRng), t => block.Forward(t), options)
                    : block.Forward(h);
                var loss = Ops.MseLoss(head.Forward(h), target);
                tape.Backward(loss);
                Assert.That((tape.SavedBytes, tape.IndexBytes), Is.EqualTo((0L, 0L)), $"step {step}: the tape holds nothing after backward");
                Assert.That(tape.Nodes.All(n => n.IsFreed), Is.True);
                if (step == 0) first = loss.Item();
                if (step == Steps - 1) last = loss.Item();
            }
            opt.Step();
            opt.ZeroGrad();
            Assert.That(pool.InUseBytes, Is.EqualTo(parameterBytes + opt.StateBytes), $"step {step}: parameters + optimizer state only");
        }
        var stats = pool.Stats();
        Assert.That(opt.StateBytes, Is.EqualTo(2 * parameterBytes), "AdamW keeps two moments per parameter");
        foreach (var c in new[] { MemoryCategory.Temporary, MemoryCategory.SavedActivation, MemoryCategory.Gradient, MemoryCategory.Workspace })
            Assert.That(stats.InUse(c), Is.Zero, $"{c} after {Steps} steps");
        Assert.That(last, Is.LessThan(first), "the model trained");
        TestContext.Out.WriteLine($"{variant}: in use {stats.InUseBytes} B = parameters {parameterBytes} + AdamW state {opt.StateBytes}; peak {stats.PeakInUseBytes} B; loss {first:0.0000} -> {last:0.0000}");
    }
}
