using System.Globalization;
using Sbp.Benchmarks.Training;
using Sbp.Memory;
using Sbp.Stochastic;

namespace Sbp.Benchmarks.Quick;

/// <summary>
/// SBP training steps of a small Video Swin (issue 8): step time (forward, loss, backward, AdamW) of
/// full backprop and of SBP at keep 0.5 and 0.25 (sparse-cache on every block, "sbp-all", and on the
/// paper's blocks, stages 1-3 less the last two of stage 3; recompute for reference), with full
/// backprop as the reference and the targets (keep 0.5 &lt;= 0.8x, keep 0.25 &lt;= 0.7x; ideal
/// (1 + 2 keep) / 3) in the note. The modes' steps are interleaved (<see cref="InterleavedTiming"/>)
/// and each reports its best step, like the other quick rows. Memory numbers are exact pool counters.
/// </summary>
public sealed class SbpStepRows(StepCase? c = null, int rounds = 15) : IQuickRowProducer
{
    readonly StepCase _case = c ?? new StepCase("swin-micro", 16, 16, 64);

    public string Name => "sbp-step";

    public IEnumerable<QuickRow> Run(QuickOptions options, IList<string> notes)
    {
        var inv = CultureInfo.InvariantCulture;
        var modes = new (StepMode Mode, double? Target)[]
        {
            (StepMode.Full, null), (StepMode.SbpAll(0.5), 0.8), (StepMode.SbpAll(0.25), 0.7),
            (StepMode.Sbp(0.5), 0.8), (StepMode.Sbp(0.25), 0.7),
            (StepMode.Sbp(0.5, RegionMode.Recompute), null), (StepMode.Sbp(0.25, RegionMode.Recompute), null),
        };
        var results = InterleavedTiming.Run(_case, [.. modes.Select(m => m.Mode)], rounds);
        double full = results[0].BestMs;
        var rows = new List<QuickRow>();
        for (int i = 0; i < results.Count; i++)
        {
            var r = results[i];
            double? target = modes[i].Target;
            string ideal = r.Keep < 1 ? string.Create(inv, $", ideal {(1 + 2 * r.Keep) / 3:F2}x") : "";
            string goal = target is { } t ? string.Create(inv, $", target <= {t:F1}x: {(r.BestMs / full <= t ? "met" : "NOT met")}") : "";
            rows.Add(new QuickRow("sbp-step", $"{_case} {r.Mode}", r.BestMs, "ms", i == 0 ? null : full, i == 0 ? null : "full",
                string.Create(inv, $"fwd {r.ForwardMs:F0} / bwd {r.BackwardMs:F0} / AdamW {r.OptimizerMs:F0} ms, " +
                    $"peak {MemoryPool.FormatBytes(r.PeakBytes).Split(" (")[0]}, saved {MemoryPool.FormatBytes(r.SavedBytes).Split(" (")[0]}{ideal}{goal}")));
        }
        notes.Add($"sbp-step: {_case}, {rounds} interleaved rounds after 1 warm-up step (one step of every mode per round; the best step of each mode and, separately, " +
                  $"its best forward / backward / AdamW), {options.AllThreads} threads; ratio = step time / full backprop's; " +
                  "targets: keep 0.5 <= 0.8, keep 0.25 <= 0.7 (ideal (1 + 2 keep) / 3: 0.67, 0.5, when every block is a region; with the paper's blocks " +
                  "4 of swin-micro's 10 blocks run full backprop, which bounds the ratio at about 0.78 (keep 0.5) and 0.67 (keep 0.25) even with an ideal region).");
        return rows;
    }
}
