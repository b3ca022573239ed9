using Sbp.Autograd;
using Sbp.Models.Architectures;
using Sbp.Models.Training;
using Sbp.Optim;
using Sbp.Rng;
using Sbp.Stochastic;
using Sbp.Tensors;

namespace Sbp.Benchmarks.Training;

/// <summary>
/// A model, its AdamW optimizer, random inputs and labels of one <see cref="StepCase"/> on a fresh,
/// isolated CPU device, ready to run training steps of one <see cref="StepMode"/> (used by the
/// BenchmarkDotNet suites; <see cref="StepBench"/> times the phases itself). Weights, inputs and
/// labels depend only on the case's seed.
/// </summary>
public sealed class TrainingSession : IDisposable
{
    readonly VideoModel _model;
    readonly SbpPolicy? _policy;
    readonly Tensor _x, _y;
    readonly AdamW _optimizer;
    readonly StepMode _mode;
    long _step;

    public TrainingSession(StepCase c, StepMode mode, Device? device = null)
    {
        _mode = mode;
        Device = device ?? Device.CreateCpu($"session-{c.Model}-{mode.Name}-{Guid.NewGuid():N}");
        _model = ModelFactory.Create(c.Model, new RandomSource(c.Seed).Split("model"), Device, c.Classes, c.Frames, c.Size, c.Size);
        _model.Train();
        _policy = mode.PolicyFor(_model, c.Seed);
        bool framesFirst = _model.FramesFirst;
        var shape = framesFirst ? new Shape(c.Batch, c.Frames, 3, c.Size, c.Size) : new Shape(c.Batch, 3, c.Frames, c.Size, c.Size);
        var rng = new Random(checked((int)c.Seed) * 7919 + 17);
        var data = new float[shape.Numel];
        for (int i = 0; i < data.Length; i++) data[i] = (float)(rng.NextDouble() * 2 - 1);
        var labelShape = framesFirst ? new Shape(c.Batch, c.Frames) : new Shape(c.Batch);   // per-frame labels for the detector
        var labels = new int[labelShape.Numel];
        for (int i = 0; i < labels.Length; i++) labels[i] = rng.Next(c.Classes);
        _x = Tensor.FromArray(data, shape, Device);
        _y = Tensor.FromArray(labels, labelShape, Device);
        _optimizer = new AdamW(ParamGroup.SplitDecay(_model.NamedParameters(), 0.05f), 1e-4f);
        ParamBytes = _model.NamedParameters().Sum(p => p.Tensor.Numel * 4L);
    }

    public Device Device { get; }
    public long ParamBytes { get; }

    /// <summary>Tape.SavedBytes after the last step's forward pass.</summary>
    public long SavedBytes { get; private set; }

    /// <summary>The multiply-adds of a step (<see cref="Autograd.FlopCounter"/>, counted on the first step: the same for every step of a mode).</summary>
    public OpCost? Cost { get; private set; }

    /// <summary>Milliseconds of the last step's forward (with the loss), backward and AdamW (with zeroing the gradients).</summary>
    public (double Forward, double Backward, double Optimizer) LastPhasesMs { get; private set; }

    /// <summary>One training step: forward, cross-entropy, backward, AdamW; returns the loss.</summary>
    public double Step()
    {
        double loss;
        long t0 = System.Diagnostics.Stopwatch.GetTimestamp(), t1, t2;
        using (TensorScope.Begin())
        using (var tape = Tape.Begin())
        {
            var l = _mode.Forward(() => Trainer.Loss(_model.Forward(_x, _policy, _step), _y));
            SavedBytes = tape.SavedBytes;
            Cost ??= FlopCounter.Of(tape);   // on the first step, which the timings treat as a warm-up
            t1 = System.Diagnostics.Stopwatch.GetTimestamp();
            tape.Backward(l);
            loss = l.Item();
            t2 = System.Diagnostics.Stopwatch.GetTimestamp();
        }
        _optimizer.Step();
        _optimizer.ZeroGrad();
        long t3 = System.Diagnostics.Stopwatch.GetTimestamp();
        static double Ms(long a, long b) => (b - a) * 1000.0 / System.Diagnostics.Stopwatch.Frequency;
        LastPhasesMs = (Ms(t0, t1), Ms(t1, t2), Ms(t2, t3));
        _step++;
        return loss;
    }

    public void Dispose()
    {
        _optimizer.Dispose();
        _x.Dispose();
        _y.Dispose();
        _model.Dispose();
    }
}
