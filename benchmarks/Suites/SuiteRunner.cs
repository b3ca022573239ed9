using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using Sbp.Benchmarks.Training;
using Sbp.Memory;
using Sbp.Stochastic;

namespace Sbp.Benchmarks.Suites;

/// <summary>
/// `suite [--quick] [--out DIR]`: SBP training-step benchmarks on the CPU: step time and memory
/// per model and mode, the memory acceptance targets, and the clip-length sweep under a pool limit.
/// Writes DIR/suite.md, DIR/suite.json and PNG plots (DIR defaults to benchmarks/results).
/// </summary>
public static class SuiteRunner
{
    /// <summary>A group of modes measured on one case.</summary>
    public sealed record Section(string Name, string Purpose, StepCase Case, IReadOnlyList<StepMode> Modes, int Warmup, int Steps);

    static readonly RegionMode Rc = RegionMode.Recompute;

    /// <summary>The sections; --quick shrinks batches and clips so the whole run takes about a minute.</summary>
    public static List<Section> Sections(bool quick) =>
    [
        new("swin-micro", "step time vs keep (the configuration of issue 8's quick sbp-step rows, all modes)",
            new StepCase("swin-micro", quick ? 4 : 16, 16, 64), [.. StepMode.All.Where(m => m.Keep != 0.125), StepMode.SbpAll(0.5), StepMode.SbpAll(0.25)], 1, quick ? 2 : 3),
        new("swin-t-112", "memory target: Swin-T-shaped Video Swin at reduced resolution, batch where full backprop's saved activations are >= 80% of its peak",
            new StepCase("swin-t", quick ? 1 : 8, 16, 112),
            quick ? [StepMode.Full, StepMode.Sbp(0.5), StepMode.Sbp(0.25), StepMode.Sbp(0.5, Rc), StepMode.Sbp(0.25, Rc)] : StepMode.All,
            1, 1),
        new("vit-micro", "ViT (branch-output SBP over tokens, grid masks)",
            new StepCase("vit-micro", quick ? 2 : 8, 16, 64), [StepMode.Full, StepMode.Checkpoint, StepMode.Sbp(0.5), StepMode.Sbp(0.25), StepMode.Sbp(0.25, Rc)], 1, 2),
        new("det-micro-long", "memory target: per-frame detector over a long clip, keep 0.2 = strided mask with stride 5",
            new StepCase("det-micro", 1, quick ? 64 : 256, 64),
            [StepMode.Full, StepMode.Checkpoint, StepMode.Sbp(0.5), StepMode.Sbp(0.2), StepMode.Sbp(0.2, Rc)], 1, 1),
        new("precision", "mixed precision: bf16 autocast (bf16-) and saved activations held in bf16 (save-bf16-), full backprop and SBP 0.5",
            new StepCase("swin-t", 1, quick ? 8 : 16, 112),
            [.. new[] { "full", "bf16-full", "save-bf16-full", "sbp-0.5", "bf16-sbp-0.5", "save-bf16-sbp-0.5" }.Select(StepMode.Parse)], 1, quick ? 1 : 3),
    ];

    public static int Run(string[] args)
    {
        bool quick = args.Contains("--quick");
        string dir = "benchmarks/results";
        HashSet<string>? only = null;
        for (int i = 0; i < args.Length; i++)
        {
            if (args[i] == "--out" && i + 1 < args.Length) dir = args[++i];
            else if (args[i] == "--only" && i + 1 < args.Length) only = [.. args[++i].Split(',')];
        }
        var started = DateTime.UtcNow;
        var sections = new List<(Section Section, List<StepResult> Rows)>();
        IReadOnlyList<InterleavedResult>? interleaved = null;
        foreach (var s in Sections(quick))
        {
            if (only is not null && !only.Contains(s.Name)) continue;
            var rows = new List<StepResult>();
            foreach (var m in s.Modes)
            {
                Console.Error.Write($"suite: {s.Case} {m.Name} ... ");
                StepResult r;
                try
                {
                    r = StepBench.Measure(s.Case, m, s.Warmup, s.Steps);
                }
                catch (Exception e) when (e is ArgumentException or InvalidOperationException or SbpRegionException or DeviceOutOfMemoryException)
                {
                    // A mode the model refuses (e.g. a mask that does not fit its windows): a row that says why.
                    Console.Error.WriteLine(e.Message);
                    rows.Add(new StepResult(s.Case, m.Name, m.Keep, 0, 0, [], 0, 0, 0, 0, 0, [], e.Message.Split('\n')[0]));
                    continue;
                }
                Console.Error.WriteLine($"{r.StepMs:F0} ms, peak {MemoryPool.FormatBytes(r.PeakBytes)}, saved {MemoryPool.FormatBytes(r.SavedActivationBytes)}");
                rows.Add(r);
            }
            sections.Add((s, rows));
            if (s.Name == "swin-micro")
            {
                Console.Error.WriteLine($"suite: {s.Case} interleaved timing ({(quick ? 3 : 15)} rounds) ...");
                interleaved = InterleavedTiming.Run(s.Case, s.Modes, quick ? 3 : 15);
            }
        }

        // Clip-length sweeps, batch 1, 64x64: Swin-micro and the per-frame detector. The budget is full
        // backprop's steady-state peak (after a warm-up step, so AdamW's state exists) at the base clip
        // length, plus 2% + 1 MiB for the pool's 512-byte block rounding (the limit counts reserved
        // bytes, the peak counts requested bytes).
        var sweeps = new List<SweepInfo>();
        if (only is null || only.Contains("sweep"))
            foreach (var (model, baseFrames, unit, cap, modes) in new (string, int, int, int, StepMode[])[]
                     {
                         ("swin-micro", quick ? 32 : 64, 8, quick ? 128 : 512,
                             [StepMode.Full, StepMode.Checkpoint, StepMode.Sbp(0.5), StepMode.Sbp(0.25), StepMode.SbpAll(0.25), StepMode.Sbp(0.5, Rc), StepMode.Sbp(0.25, Rc)]),
                         ("det-micro", quick ? 32 : 128, quick ? 8 : 32, quick ? 256 : 2048,
                             [StepMode.Full, StepMode.Checkpoint, StepMode.Sbp(0.5), StepMode.Sbp(0.25), StepMode.Sbp(0.25, Rc)]),
                     })
            {
                var sweepCase = new StepCase(model, 1, baseFrames, quick ? 32 : 64);
                long budget = (long)(StepBench.Measure(sweepCase, StepMode.Full, 1, 1).PeakBytes * 1.02) + (1 << 20);
                var results = new List<SweepResult>();
                foreach (var m in modes)
                {
                    Console.Error.Write($"suite: sweep {model} {m.Name} under {MemoryPool.FormatBytes(budget)} ... ");
                    var r = ClipSweep.Run(sweepCase, m, budget, unit, cap);
                    Console.Error.WriteLine($"{r.MaxFrames} frames ({r.Trials.Count} trials)");
                    results.Add(r);
                }
                sweeps.Add(new SweepInfo(sweepCase, budget, unit, cap, results));
            }

        double seconds = (DateTime.UtcNow - started).TotalSeconds;
        Directory.CreateDirectory(dir);
        var machine = Machine();
        var checks = Acceptance(sections, sweeps, interleaved);
        string md = Markdown(sections, sweeps, checks, machine, started, seconds, quick, interleaved);
        File.WriteAllText(Path.Combine(dir, "suite.md"), md);
        File.WriteAllText(Path.Combine(dir, "suite.json"), JsonSerializer.Serialize(new
        {
            generated = started.ToString("u", CultureInfo.InvariantCulture),
            seconds = Math.Round(seconds, 1),
            quick,
            machine,
            acceptance = checks,
            interleaved,
            sections = sections.Select(s => new { name = s.Section.Name, purpose = s.Section.Purpose, @case = s.Section.Case, warmup = s.Section.Warmup, steps = s.Section.Steps, rows = s.Rows }),
            sweeps = sweeps.Select(sweep => new
            {
                @case = sweep.Case, budgetBytes = sweep.Budget, unit = sweep.Unit, cap = sweep.Cap,
                modes = sweep.Results.Select(r => new { mode = r.Mode, keep = r.Keep, maxFrames = r.MaxFrames, trials = r.Trials.Select(t => new { frames = t.Frames, fits = t.Fits }) }),
            }),
        }, new JsonSerializerOptions { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase, IncludeFields = true, NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals }) + "\n");
        SuitePlots.Write(dir, sections.Select(s => (s.Section.Name, (IReadOnlyList<StepResult>)s.Rows)).ToList(), sweeps);
        Console.WriteLine(md);
        return 0;
    }

    /// <summary>The sweep's case, budget, frame unit and cap, and each mode's result.</summary>
    public sealed record SweepInfo(StepCase Case, long Budget, int Unit, int Cap, IReadOnlyList<SweepResult> Results);

    /// <summary>One acceptance target: what was compared, the measured ratio, the target and whether it is met.</summary>
    public sealed record Check(string Target, string Measured, double Value, double Limit, bool AtMost, bool Met);

    static List<Check> Acceptance(List<(Section Section, List<StepResult> Rows)> sections, IReadOnlyList<SweepInfo> sweeps, IReadOnlyList<InterleavedResult>? interleaved)
    {
        var checks = new List<Check>();
        StepResult? Row(string section, string mode) =>
            sections.FirstOrDefault(s => s.Section.Name == section).Rows?.FirstOrDefault(r => r.Mode == mode);
        void Ratio(string section, string mode, string what, double limit, Func<StepResult, double> value)
        {
            var full = Row(section, "full");
            var r = Row(section, mode);
            if (full is null || r is null) return;
            double q = value(r) / value(full);
            checks.Add(new Check($"{section} {mode}: {what} <= {limit:0.##}x full", $"{q:F3}x ({Fmt(value(r))} vs {Fmt(value(full))})", q, limit, true, q <= limit));
        }
        // Step-time targets from the interleaved timing (best step of each mode; robust to other load).
        if (interleaved is not null && interleaved.FirstOrDefault(r => r.Mode == "full") is { } fi)
            foreach (var (mode, limit) in new[] { ("sbp-all-0.5", 0.8), ("sbp-all-0.25", 0.7), ("sbp-0.5", 0.8), ("sbp-0.25", 0.7), ("sbp-rc-0.5", 0.8), ("sbp-rc-0.25", 0.7) })
                if (interleaved.FirstOrDefault(r => r.Mode == mode) is { } ri)
                {
                    double q = ri.BestMs / fi.BestMs;
                    checks.Add(new Check($"swin-micro {mode}: step time <= {limit:0.##}x full (interleaved, best step)",
                        $"{q:F3}x ({ri.BestMs:F0} ms vs {fi.BestMs:F0} ms; backward {ri.BackwardMs:F0} vs {fi.BackwardMs:F0} ms)", q, limit, true, q <= limit));
                }
        if (Row("swin-t-112", "full") is { } ft)
            checks.Add(new Check("swin-t-112 full: saved activations >= 80% of peak", $"{ft.SavedShareOfPeak:P1}", ft.SavedShareOfPeak, 0.8, false, ft.SavedShareOfPeak >= 0.8));
        foreach (var m in new[] { "sbp-0.5", "sbp-rc-0.5" }) Ratio("swin-t-112", m, "peak", 0.7, r => r.PeakBytes);
        foreach (var m in new[] { "sbp-0.25", "sbp-rc-0.25" }) Ratio("swin-t-112", m, "peak", 0.55, r => r.PeakBytes);
        foreach (var m in new[] { "sbp-0.2", "sbp-rc-0.2" }) Ratio("det-micro-long", m, "peak", 0.35, r => r.PeakBytes);
        foreach (var sweep in sweeps)
        {
            var full = sweep.Results.First(r => r.Mode == "full");
            foreach (var r in sweep.Results.Where(r => r.Keep <= 0.25))
            {
                double q = full.MaxFrames == 0 ? double.PositiveInfinity : (double)r.MaxFrames / full.MaxFrames;
                bool capped = r.MaxFrames + sweep.Unit > sweep.Cap;
                checks.Add(new Check($"sweep {sweep.Case.Model} {r.Mode}: max frames >= 2x full", $"{r.MaxFrames} vs {full.MaxFrames} frames = {q:F2}x{(capped ? " (hit the cap)" : "")}", q, 2, false, q >= 2));
            }
        }
        return checks;
    }

    static string Fmt(double v) => v > 1e5 ? MemoryPool.FormatBytes((long)v).Split(' ')[0] + " " + MemoryPool.FormatBytes((long)v).Split(' ')[1] : $"{v:F0} ms";

    static string MiB(long b) => (b / 1048576.0).ToString("F1", CultureInfo.InvariantCulture);

    static string Markdown(List<(Section Section, List<StepResult> Rows)> sections, IReadOnlyList<SweepInfo> sweeps, List<Check> checks,
        Dictionary<string, string> machine, DateTime started, double seconds, bool quick, IReadOnlyList<InterleavedResult>? interleaved)
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.Append("# SBP training-step suite\n\n");
        sb.Append(inv, $"Generated by `dotnet run -c Release --project benchmarks -- suite{(quick ? " --quick" : "")}` at {started.ToString("u", inv)} in {seconds:F0} s; do not edit by hand.\n\n");
        sb.Append(inv, $"Machine: {machine["cpu"]}, {machine["cores"]} cores, {machine["os"]}, {machine["runtime"]}. ");
        sb.Append(inv, $"Load average at the start (1/5/15 min): {machine["loadavg"]}. ");
        sb.Append("The machine is shared with other jobs, so step times are noisy (medians of few steps); memory numbers are exact (the device pool's counters).\n\n");
        sb.Append("Each row: a fresh CPU device (its own pool), the same weights and inputs for every mode of a section; warm-up steps, then timed steps of forward, ");
        sb.Append("cross-entropy on random labels, backward and AdamW. `peak`: the pool's peak over the timed steps (parameters, gradients, AdamW state, inputs, activations, workspace); ");
        sb.Append("`saved`: Tape.SavedBytes after the forward pass; `idx`: SBP index buffers; `regions`: bytes held by SBP regions (and what full backprop held in them).\n\n");
        sb.Append("## Acceptance targets\n\n| target | measured | met |\n|---|---|---|\n");
        foreach (var c in checks) sb.Append(inv, $"| {c.Target} | {c.Measured} | {(c.Met ? "yes" : "**no**")} |\n");
        foreach (var (s, rows) in sections)
        {
            sb.Append(inv, $"\n## {s.Name}: {s.Case}\n\n{s.Purpose}. {s.Warmup} warm-up + {s.Steps} timed step(s).\n\n");
            sb.Append("| mode | step ms (median) | vs full | fwd / bwd / opt ms | peak MiB | vs full | saved MiB | vs full | saved/peak | idx MiB | regions MiB (full backprop in them) | params MiB |\n");
            sb.Append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
            var full = rows.FirstOrDefault(r => r.Mode == "full");
            foreach (var r in rows)
            {
                if (r.Error is not null)
                {
                    sb.Append(inv, $"| {r.Mode} | refused: {r.Error.Replace("|", "/", StringComparison.Ordinal)} ||||||||||\n");
                    continue;
                }
                string V(double a, double? b) => b is > 0 ? (a / b.Value).ToString("F2", inv) : "";
                long reg = r.Regions.Where(g => g.Kept < g.Size || g.Mode == "Checkpoint").Sum(g => g.SavedBytes);
                long regFull = r.Regions.Where(g => g.Kept < g.Size || g.Mode == "Checkpoint").Sum(g => g.FullSavedBytes ?? 0);
                sb.Append(inv, $"| {r.Mode} | {r.StepMs:F0} | {V(r.StepMs, full?.StepMs)} | {r.ForwardMs:F0} / {r.BackwardMs:F0} / {r.OptimizerMs:F0} | {MiB(r.PeakBytes)} | {V(r.PeakBytes, full?.PeakBytes)} | {MiB(r.SavedActivationBytes)} | {V(r.SavedActivationBytes, full?.SavedActivationBytes)} | {r.SavedShareOfPeak:P0} | {MiB(r.IndexBytes)} | {MiB(reg)} ({MiB(regFull)}) | {MiB(r.ParamBytes)} |\n");
            }
        }
        if (interleaved is not null && interleaved.FirstOrDefault(r => r.Mode == "full") is { } f0)
        {
            sb.Append("\n## swin-micro: interleaved step times\n\nThe same modes again, one step of each per round (after a warm-up step each), best step per mode and best forward / backward / AdamW separately; used for the step-time targets. Ideal SBP ratio: the mode's multiply-adds over full backprop's, counted on the tape " +
                "(FlopCounter; not for recompute and checkpointing, whose regions the tape does not hold); GFLOP/s: 2 x multiply-adds / best step.\n\n");
            sb.Append("| mode | best step ms | vs full | ideal | measured - ideal | GFLOP/s | forward ms | backward ms | backward vs full | AdamW ms |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
            foreach (var r in interleaved)
            {
                bool taped = StepMode.Parse(r.Mode).RegionsTaped;
                bool counted = r.Keep < 1 && taped;
                double ideal = (double)r.Cost.Macs / f0.Cost.Macs;
                sb.Append(inv, $"| {r.Mode} | {r.BestMs:F0} | {r.BestMs / f0.BestMs:F2} | {(counted ? ideal.ToString("F2", inv) : "")} | {(counted ? (r.BestMs / f0.BestMs - ideal).ToString("+0.00;-0.00", inv) : "")} | " +
                    $"{(taped ? r.GigaflopsPerSecond.ToString("F0", inv) : "")} | {r.ForwardMs:F0} | {r.BackwardMs:F0} | {r.BackwardMs / f0.BackwardMs:F2} | {r.OptimizerMs:F0} |\n");
            }
        }
        foreach (var sweep in sweeps)
        {
            sb.Append(inv, $"\n## Clip-length sweep: {sweep.Case.Model}, batch {sweep.Case.Batch}, {sweep.Case.Size}x{sweep.Case.Size}, frames varied\n\n");
            sb.Append(inv, $"Pool limit {MiB(sweep.Budget)} MiB (= full backprop's steady-state peak at {sweep.Case.Frames} frames + 2% + 1 MiB for block rounding). Frames double from {sweep.Unit}, then bisect in multiples of {sweep.Unit} (the window's frames), capped at {sweep.Cap}; two training steps (the second with AdamW's state allocated) must finish without DeviceOutOfMemoryException.\n\n");
            sb.Append("| mode | max frames | vs full | trials (frames: fits) |\n|---|---:|---:|---|\n");
            var full = sweep.Results.First(r => r.Mode == "full");
            foreach (var r in sweep.Results)
                sb.Append(inv, $"| {r.Mode} | {r.MaxFrames}{(r.MaxFrames + sweep.Unit > sweep.Cap ? " (cap)" : "")} | {(full.MaxFrames > 0 ? ((double)r.MaxFrames / full.MaxFrames).ToString("F2", inv) : "")} | {string.Join(", ", r.Trials.Select(t => $"{t.Frames}:{(t.Fits ? "y" : "n")}"))} |\n");
        }
        sb.Append("\nPlots: `suite-memory.png` (peak and saved bytes vs keep), `suite-time.png` (step time vs keep), `suite-frames.png` (max frames under the budget relative to full backprop, every sweep).\n");
        return sb.ToString();
    }

    static Dictionary<string, string> Machine()
    {
        string cpu = "unknown";
        try
        {
            foreach (var line in File.ReadLines("/proc/cpuinfo"))
                if (line.StartsWith("model name", StringComparison.Ordinal)) { cpu = line[(line.IndexOf(':') + 1)..].Trim(); break; }
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return new()
        {
            ["cpu"] = cpu,
            ["cores"] = Environment.ProcessorCount.ToString(CultureInfo.InvariantCulture),
            ["os"] = RuntimeInformation.OSDescription,
            ["runtime"] = RuntimeInformation.FrameworkDescription,
            ["loadavg"] = File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "?",
        };
    }
}
