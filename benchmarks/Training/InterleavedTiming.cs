namespace Sbp.Benchmarks.Training;

/// <summary>One mode's interleaved timing: the best step and the best forward / backward / AdamW over the rounds, and its pool peak and saved bytes.</summary>
public sealed record InterleavedResult(string Mode, double Keep, double BestMs, double ForwardMs, double BackwardMs, double OptimizerMs, long PeakBytes, long SavedBytes,
    Autograd.OpCost Cost, IReadOnlyList<double> StepsMs)
{
    /// <summary>The median over rounds of this mode's step over <paramref name="reference"/>'s step of the same round: robust to load that shifts between rounds.</summary>
    public double PairedRatio(InterleavedResult reference) =>
        StepBench.Median([.. StepsMs.Select((ms, r) => ms / reference.StepsMs[r]).Order()]);

    /// <summary>The step's counted FLOPs (2 per multiply-add) over its best time, in GFLOP/s.</summary>
    public double GigaflopsPerSecond => Autograd.OpCost.Gigaflops(Cost.Macs, BestMs);
}

/// <summary>
/// Step times of several modes of one case measured in rounds (one step of every mode per round,
/// on sessions with the same weights and inputs), after one warm-up step each: load from other
/// processes hits all modes alike, and each mode reports its best (least disturbed) step, as the
/// quick mode's Timing.Best does. Used where time ratios matter on a shared machine.
/// </summary>
public static class InterleavedTiming
{
    public static IReadOnlyList<InterleavedResult> Run(StepCase c, IReadOnlyList<StepMode> modes, int rounds)
    {
        var sessions = new List<TrainingSession>();
        try
        {
            foreach (var m in modes) sessions.Add(new TrainingSession(c, m));
            foreach (var s in sessions) s.Step();                 // AdamW's state exists from here on
            foreach (var s in sessions) s.Device.Pool.ResetPeak();
            var steps = sessions.Select(_ => new List<(double F, double B, double O)>()).ToArray();
            for (int r = 0; r < rounds; r++)
                for (int i = 0; i < sessions.Count; i++)
                {
                    sessions[i].Step();
                    steps[i].Add(sessions[i].LastPhasesMs);
                }
            return [.. modes.Select((m, i) => new InterleavedResult(m.Name, m.Keep, steps[i].Min(p => p.F + p.B + p.O),
                steps[i].Min(p => p.F), steps[i].Min(p => p.B), steps[i].Min(p => p.O), sessions[i].Device.Pool.PeakInUseBytes, sessions[i].SavedBytes,
                sessions[i].Cost ?? default, [.. steps[i].Select(p => p.F + p.B + p.O)]))];
        }
        finally
        {
            foreach (var s in sessions) s.Dispose();
        }
    }
}
