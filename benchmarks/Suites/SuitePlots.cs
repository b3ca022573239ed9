using Sbp.Benchmarks.Training;

namespace Sbp.Benchmarks.Suites;

/// <summary>The suite's PNG plots (ScottPlot): memory vs keep, step time vs keep, max frames under the budget.</summary>
static class SuitePlots
{
    public static void Write(string dir, IReadOnlyList<(string Name, IReadOnlyList<StepResult> Rows)> sections, IReadOnlyList<SuiteRunner.SweepInfo> sweeps)
    {
        // Keep-ratio curves: full backprop at keep 1, then SBP rows of each caching mode.
        static (double[] X, double[] Y) Curve(IReadOnlyList<StepResult> rows, string prefix, Func<StepResult, double> y)
        {
            var pts = rows.Where(r => r.Error is null).Where(r => r.Mode == "full" || r.Mode.StartsWith(prefix, StringComparison.Ordinal) && char.IsDigit(r.Mode[prefix.Length]))
                .OrderBy(r => r.Keep).ToList();
            return ([.. pts.Select(r => r.Keep)], [.. pts.Select(y)]);
        }

        var memory = new ScottPlot.Plot();
        foreach (var (name, rows) in sections)
        {
            if (!rows.Any(r => r.Mode == "full")) continue;
            double full = rows.First(r => r.Mode == "full").PeakBytes;
            foreach (var (prefix, label) in new[] { ("sbp-", "sparse-cache"), ("sbp-rc-", "recompute") })
            {
                var (x, y) = Curve(rows, prefix, r => r.PeakBytes / full);
                if (x.Length < 2) continue;
                memory.Add.Scatter(x, y).LegendText = $"{name} peak, {label}";
            }
        }
        memory.Title("Peak memory vs keep ratio (relative to full backprop)");
        memory.XLabel("keep ratio (1 = full backprop)");
        memory.YLabel("peak / full peak");
        memory.ShowLegend();
        memory.SavePng(Path.Combine(dir, "suite-memory.png"), 900, 550);

        var time = new ScottPlot.Plot();
        foreach (var (name, rows) in sections)
        {
            if (!rows.Any(r => r.Mode == "full")) continue;
            double full = rows.First(r => r.Mode == "full").StepMs;
            foreach (var (prefix, label) in new[] { ("sbp-", "sparse-cache"), ("sbp-rc-", "recompute") })
            {
                var (x, y) = Curve(rows, prefix, r => r.StepMs / full);
                if (x.Length < 2) continue;
                time.Add.Scatter(x, y).LegendText = $"{name}, {label}";
            }
        }
        var ideal = time.Add.Scatter(new[] { 0.0, 1.0 }, new[] { 1 / 3.0, 1.0 });
        ideal.LegendText = "(1 + 2 keep) / 3: every op in a region, all GEMM";
        ideal.LinePattern = ScottPlot.LinePattern.Dashed;
        time.Title("Training step time vs keep ratio (relative to full backprop)");
        time.XLabel("keep ratio");
        time.YLabel("step time / full step time");
        time.ShowLegend();
        time.SavePng(Path.Combine(dir, "suite-time.png"), 900, 550);

        if (sweeps.Count == 0) return;
        // One bar group per sweep: max frames relative to full backprop, labelled "model mode".
        var frames = new ScottPlot.Plot();
        var labels = new List<string>();
        var bars = new List<ScottPlot.Bar>();
        foreach (var sweep in sweeps)
        {
            double full = Math.Max(1, sweep.Results.First(r => r.Mode == "full").MaxFrames);
            foreach (var r in sweep.Results)
            {
                bars.Add(new ScottPlot.Bar { Position = labels.Count, Value = r.MaxFrames / full });
                labels.Add($"{sweep.Case.Model}\n{r.Mode}");
            }
        }
        frames.Add.Bars(bars);
        frames.Axes.Bottom.SetTicks([.. Enumerable.Range(0, labels.Count).Select(i => (double)i)], [.. labels]);
        frames.Title($"Longest clip under full backprop's peak memory (batch 1, frames relative to full backprop)");
        frames.YLabel("max frames / full backprop's");
        frames.Axes.Margins(bottom: 0);
        frames.SavePng(Path.Combine(dir, "suite-frames.png"), 1400, 600);
    }
}
