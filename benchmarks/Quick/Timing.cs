using System.Diagnostics;

namespace Sbp.Benchmarks.Quick;

static class Timing
{
    /// <summary>
    /// Best (minimum) seconds of one call of <paramref name="body"/>: warm-up calls (at least 60 or
    /// 0.3 s, so that tiered JIT has replaced the first, unoptimized code), then repeats until
    /// <paramref name="minSeconds"/> have passed and at least <paramref name="minReps"/> ran.
    /// </summary>
    public static double Best(Action body, double minSeconds, int minReps = 3, int maxReps = 1000)
    {
        long warm = Stopwatch.GetTimestamp();
        for (int i = 0; i < 60 && Stopwatch.GetElapsedTime(warm).TotalSeconds < 0.3; i++) body();
        double best = double.MaxValue, total = 0;
        for (int rep = 0; rep < maxReps && (rep < minReps || total < minSeconds); rep++)
        {
            long t0 = Stopwatch.GetTimestamp();
            body();
            double s = Stopwatch.GetElapsedTime(t0).TotalSeconds;
            best = Math.Min(best, s);
            total += s;
        }
        return best;
    }
}
