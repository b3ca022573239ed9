namespace Sbp.Optim;

/// <summary>
/// A learning rate as a function of the step number (0-based: the step about to be taken, i.e.
/// <see cref="Optimizer.StepCount"/> before <see cref="Optimizer.Step"/>). The position is just
/// that number, so a checkpoint that saves the step restores the schedule.
/// </summary>
public interface ILearningRateSchedule
{
    float LearningRate(long step);
}

public static class LearningRateScheduleExtensions
{
    /// <summary>Sets the optimizer's learning rate for its next step (position = optimizer.StepCount); returns it.</summary>
    public static float Apply(this ILearningRateSchedule schedule, Optimizer optimizer) => Apply(schedule, optimizer, optimizer.StepCount);

    /// <summary>Sets the optimizer's learning rate for step <paramref name="step"/>; returns it.</summary>
    public static float Apply(this ILearningRateSchedule schedule, Optimizer optimizer, long step)
    {
        float lr = schedule.LearningRate(step);
        optimizer.LearningRate = lr;
        return lr;
    }
}

/// <summary>
/// Linear warmup, then cosine decay to <see cref="MinLr"/>. With W = warmupSteps, T = totalSteps,
/// computed in float64 and rounded to float:
/// <list type="bullet">
/// <item>s &lt; W: lr = baseLr * (s + 1) / W (reaches baseLr at the last warmup step);</item>
/// <item>W &lt;= s &lt; T: lr = minLr + (baseLr - minLr) * (1 + cos(pi * (s - W) / (T - W))) / 2 (baseLr at s = W);</item>
/// <item>s &gt;= T: lr = minLr.</item>
/// </list>
/// </summary>
public sealed class WarmupCosine : ILearningRateSchedule
{
    public WarmupCosine(float baseLr, long warmupSteps, long totalSteps, float minLr = 0f)
    {
        if (warmupSteps < 0) throw new ArgumentOutOfRangeException(nameof(warmupSteps), $"WarmupCosine: warmupSteps must be >= 0, got {warmupSteps}.");
        if (totalSteps < warmupSteps) throw new ArgumentOutOfRangeException(nameof(totalSteps), $"WarmupCosine: totalSteps ({totalSteps}) must be >= warmupSteps ({warmupSteps}).");
        if (!(baseLr >= 0f) || !(minLr >= 0f)) throw new ArgumentOutOfRangeException(nameof(baseLr), $"WarmupCosine: learning rates must be >= 0, got base {baseLr}, min {minLr}.");
        BaseLr = baseLr;
        WarmupSteps = warmupSteps;
        TotalSteps = totalSteps;
        MinLr = minLr;
    }

    public float BaseLr { get; }
    public long WarmupSteps { get; }
    public long TotalSteps { get; }
    public float MinLr { get; }

    public float LearningRate(long step)
    {
        if (step < 0) throw new ArgumentOutOfRangeException(nameof(step), $"WarmupCosine: step must be >= 0, got {step}.");
        if (step < WarmupSteps) return (float)((double)BaseLr * (step + 1) / WarmupSteps);
        if (step >= TotalSteps) return MinLr;
        double progress = (double)(step - WarmupSteps) / (TotalSteps - WarmupSteps);
        return (float)(MinLr + ((double)BaseLr - MinLr) * (1.0 + Math.Cos(Math.PI * progress)) / 2.0);
    }

    public override string ToString() => $"WarmupCosine(base {BaseLr}, warmup {WarmupSteps}, total {TotalSteps}, min {MinLr})";
}

/// <summary>lr = baseLr * gamma^floor(step / stepSize) (PyTorch's StepLR), in float64 rounded to float.</summary>
public sealed class StepDecay : ILearningRateSchedule
{
    public StepDecay(float baseLr, long stepSize, float gamma = 0.1f)
    {
        if (stepSize <= 0) throw new ArgumentOutOfRangeException(nameof(stepSize), $"StepDecay: stepSize must be > 0, got {stepSize}.");
        if (!(gamma >= 0f)) throw new ArgumentOutOfRangeException(nameof(gamma), $"StepDecay: gamma must be >= 0, got {gamma}.");
        BaseLr = baseLr;
        StepSize = stepSize;
        Gamma = gamma;
    }

    public float BaseLr { get; }
    public long StepSize { get; }
    public float Gamma { get; }

    public float LearningRate(long step)
    {
        if (step < 0) throw new ArgumentOutOfRangeException(nameof(step), $"StepDecay: step must be >= 0, got {step}.");
        return (float)(BaseLr * Math.Pow(Gamma, step / StepSize));
    }

    public override string ToString() => $"StepDecay(base {BaseLr}, every {StepSize} steps x {Gamma})";
}
