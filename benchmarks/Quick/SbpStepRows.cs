using System.Globalization;
using Sbp.Benchmarks.Training;
using Sbp.Memory;
using Sbp.Stochastic;

namespace Sbp.Benchmarks.Quick;

/// <summary>
/// SBP training steps of a small Video Swin (issue 8): step time (forward, loss, backward, AdamW) of
/// full backprop and of SBP at keep 0.5 and 0.25 (sparse-cache on every block, "sbp-all", and on the
/// paper's blocks, stages 1-3 less the last two of stage 3; recompute for reference), with full
/// backprop as the reference and the targets (keep 0.5 &lt;= 0.8x, keep 0.25 &lt;= 0.7x) in the note. The ideal
/// ratio of each SBP mode is counted (<see cref="Autograd.FlopCounter"/>: the mode's multiply-adds over full backprop's), and
/// each step's counted GFLOP/s is compared with the SGEMM rate on the same threads (whole-step efficiency). The
/// modes' steps are interleaved (<see cref="InterleavedTiming"/>) and each reports its best step, like the other
/// quick rows. Memory numbers are exact pool counters.
/// </summary>
public sealed class SbpStepRows(StepCase? c = null, int rounds = 15, bool stepTargets = true) : IQuickRowProducer
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
        if (!stepTargets) modes = [.. modes.Where(m => m.Mode.Caching != RegionMode.Recompute).Select(m => (m.Mode, (double?)null))];
        var results = InterleavedTiming.Run(_case, [.. modes.Select(m => m.Mode)], rounds);
        double full = results[0].BestMs, sgemm = SgemmRate(options);
        long fullMacs = results[0].Cost.Macs;
        var rows = new List<QuickRow>();
        for (int i = 0; i < results.Count; i++)
        {
            var r = results[i];
            double? target = modes[i].Target;
            bool taped = modes[i].Mode.RegionsTaped;
            double idealRatio = (double)r.Cost.Macs / fullMacs, gap = r.BestMs / full - idealRatio;
            string ideal = r.Keep >= 1 ? "" : !taped ? ", ideal: not counted (recompute: regions run untaped)"
                : string.Create(inv, $", ideal {idealRatio:F2}x, measured - ideal {gap:+0.000;-0.000} (<= 0.03: {(gap <= 0.03 ? "met" : "NOT met")})");
            string goal = target is { } t ? string.Create(inv, $", target <= {t:F1}x: {(r.BestMs / full <= t ? "met" : "NOT met")}") : "";
            string rate = !taped ? ""
                : string.Create(inv, $"{2.0 * r.Cost.Macs / 1e9:F1} GFLOP at {r.GigaflopsPerSecond:F0} GFLOP/s = {r.GigaflopsPerSecond / sgemm:P0} of SGEMM, ");
            rows.Add(new QuickRow("sbp-step", $"{_case} {r.Mode}", r.BestMs, "ms", i == 0 ? null : full, i == 0 ? null : "full",
                string.Create(inv, $"fwd {r.ForwardMs:F0} / bwd {r.BackwardMs:F0} / AdamW {r.OptimizerMs:F0} ms, {rate}" +
                    $"peak {MemoryPool.FormatBytes(r.PeakBytes).Split(" (")[0]}, saved {MemoryPool.FormatBytes(r.SavedBytes).Split(" (")[0]}{ideal}{goal}")));
        }
        if (!stepTargets)
        {
            notes.Add($"sbp-step: {_case}, {rounds} interleaved rounds after 1 warm-up step, as above.");
            return rows;
        }
        notes.Add($"sbp-step: {_case}, {rounds} interleaved rounds after 1 warm-up step (one step of every mode per round; the best step of each mode and, separately, " +
                  $"its best forward / backward / AdamW), {options.AllThreads} threads; ratio = step time / full backprop's; " +
                  "targets: keep 0.5 <= 0.8, keep 0.25 <= 0.7; ideal = the mode's counted multiply-adds (FlopCounter: forward, and backward at the kept positions " +
                  "inside regions) over full backprop's; GFLOP/s = 2 x multiply-adds / best step, against a " +
                  string.Create(inv, $"{options.AllThreads}-thread 1024^3 SGEMM at {sgemm:F0} GFLOP/s (whole-step efficiency)."));
        return rows;
    }

    /// <summary>GFLOP/s of a 1024^3 SGEMM on all threads, the reference for a step's efficiency.</summary>
    static double SgemmRate(QuickOptions options)
    {
        const int n = 1024;
        var device = Tensors.Device.CreateCpu("sbp-step sgemm");
        var backend = Backends.Cpu.CpuBackend.Instance;
        int saved = backend.GemmThreads;
        try
        {
            backend.GemmThreads = options.AllThreads;
            using var a = Tensors.Tensor.Full(new Tensors.Shape(n, n), 0.5f, device);
            using var b = Tensors.Tensor.Full(new Tensors.Shape(n, n), 0.25f, device);
            using var c = Tensors.Tensor.Zeros(new Tensors.Shape(n, n), device);
            return 2.0 * n * n * n / Timing.Best(() => backend.Gemm(new Backends.GemmSpec(false, false, n, n, n), a, b, c), options.MinSecondsPerCase) / 1e9;
        }
        finally
        {
            backend.GemmThreads = saved;
        }
    }
}
