using Sbp.Benchmarks.Training;

namespace Sbp.Benchmarks.Suites;

/// <summary>The longest clip one mode trains (one step) under a pool limit: the frames tried, and the longest that fit.</summary>
public sealed record SweepResult(string Mode, double Keep, int MaxFrames, IReadOnlyList<(int Frames, bool Fits)> Trials);

/// <summary>
/// Clip-length sweep: for a fixed memory limit on the device pool, doubles the frames (in multiples
/// of <c>step</c>, e.g. the window's frames) until a training step throws DeviceOutOfMemoryException,
/// then bisects between the last fit and the first failure.
/// </summary>
public static class ClipSweep
{
    public static SweepResult Run(StepCase baseCase, StepMode mode, long limitBytes, int step, int maxFrames)
    {
        var trials = new List<(int, bool)>();
        bool Try(int frames)
        {
            bool fits = StepBench.Fits(baseCase with { Frames = frames }, mode, limitBytes);
            trials.Add((frames, fits));
            return fits;
        }
        int lo = 0, hi = step;   // lo fits (0: nothing known), hi is the next candidate
        while (hi <= maxFrames && Try(hi)) { lo = hi; hi *= 2; }
        if (hi > maxFrames) return new SweepResult(mode.Name, mode.Keep, lo, trials);
        // lo fits (or is 0), hi does not: bisect over multiples of step.
        while (hi - lo > step)
        {
            int mid = (lo + hi) / 2 / step * step;
            if (mid <= lo) break;
            if (Try(mid)) lo = mid; else hi = mid;
        }
        return new SweepResult(mode.Name, mode.Keep, lo, trials);
    }
}
