using System.Globalization;
using System.Text;
using Sbp.Memory;
using Sbp.OpCases;

namespace Sbp.GpuKit;

/// <summary>report.md: the same content as report.json, as tables.</summary>
public sealed partial class KitReport
{
    static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public string ToMarkdown()
    {
        var s = new StringBuilder();
        s.AppendLine("# sbp-gpu report").AppendLine();
        s.AppendLine(Inv, $"- status: **{Status}**{(Message is null ? "" : $" — {Message}")}");
        s.AppendLine(Inv, $"- command: `{Command}`");
        s.AppendLine(Inv, $"- started: {Started:u}, took {F(TotalSeconds, "0.0")} s of a {F(BudgetSeconds, "0")} s budget; engine {EngineInfo.Version}");
        if (Device is { } d) AppendDevice(s, d);
        if (Phases.Count > 0)
        {
            s.AppendLine().AppendLine("## Phases").AppendLine();
            s.AppendLine("| phase | status | seconds | detail |").AppendLine("|---|---|---:|---|");
            foreach (var p in Phases) s.AppendLine(Inv, $"| {p.Name} | {(p.Status == "failed" ? "**failed**" : p.Status)} | {F(p.Seconds, "0.0")} | {Cell(p.Detail)} |");
        }
        if (Ops.Count > 0)
        {
            s.AppendLine().AppendLine(Inv, $"## Ops against the CPU backend ({Ops.Count(o => o.Passed)}/{Ops.Count} passed)").AppendLine();
            s.AppendLine("| op | result | max abs diff | max rel diff | detail |").AppendLine("|---|---|---:|---:|---|");
            foreach (var o in Ops)
                s.AppendLine(Inv, $"| {o.Name} | {Result(o.Passed)} | {F(o.MaxAbsDiff, "G3")} | {F(o.MaxRelDiff, "G3")} | {Cell(o.Error ?? o.Worst)} |");
        }
        if (LargeOps.Count > 0)
        {
            s.AppendLine().AppendLine(Inv, $"## Large shapes against the CPU backend ({LargeOps.Count(o => o.Passed)}/{LargeOps.Count} passed)").AppendLine();
            s.AppendLine("Device time: forward and backward of the op, the second run, between two CUDA events.").AppendLine();
            s.AppendLine("| op | result | device ms | max abs diff | max rel diff | detail |").AppendLine("|---|---|---:|---:|---:|---|");
            foreach (var o in LargeOps)
                s.AppendLine(Inv, $"| {o.Name} | {Result(o.Passed)} | {F(o.Ms, "0.###")} | {F(o.MaxAbsDiff, "G3")} | {F(o.MaxRelDiff, "G3")} | {Cell(o.Error ?? o.Worst)} |");
        }
        AppendTrainSteps(s);
        if (Nccl is { } n)
        {
            s.AppendLine().AppendLine("## NCCL (one rank: all-reduce and broadcast through NcclCommunicator)").AppendLine();
            s.AppendLine(Inv, $"- {(n.Status == "failed" ? "**FAIL**" : n.Status)}: {n.Detail}{(n.Library.Length > 0 ? $" ({n.Library}, {F(n.Ms, "0")} ms)" : "")}");
        }
        if (Bench is { } b) AppendBench(s, b);
        if (Profile is { } profile) s.AppendLine().Append(ProfileTable(profile));
        return s.ToString();
    }

    /// <summary>The per-op table of a profiled step: op, phase, calls, ms, share, and the modeled ms where a model gave one.</summary>
    public static string ProfileTable(StepProfileResult p)
    {
        var s = new StringBuilder();
        s.AppendLine(Inv, $"## Per-op time of one training step: {p.Options.Model}, batch {p.Options.Batch}, {p.Options.Frames} x {p.Options.Size} x {p.Options.Size}, full backprop").AppendLine();
        s.AppendLine("| phase | ms (CUDA events) | modeled ms |").AppendLine("|---|---:|---:|");
        foreach (var (phase, ms) in new[] { ("forward", p.ForwardMs), ("backward", p.BackwardMs), ("optimizer", p.OptimizerMs) })
            s.AppendLine(Inv, $"| {phase} | {F(ms, "0.00")} | {(p.ModeledPhase(phase) is { } m ? F(m, "0.00") : "")} |");
        s.AppendLine();
        if (p.ModelNote is not null) s.AppendLine(Inv, $"- modeled times: {p.ModelNote}");
        s.AppendLine(Inv, $"- op times: {p.Timing}; the ops below sum to {F(p.Rows.Sum(r => r.Ms), "0.00")} ms").AppendLine();
        s.AppendLine("| op | phase | calls | ms | share | modeled ms |").AppendLine("|---|---|---:|---:|---:|---:|");
        foreach (var r in p.Rows)
            s.AppendLine(Inv, $"| {r.Op} | {r.Phase} | {r.Calls} | {F(r.Ms, "0.000")} | {F(100 * r.Share, "0.0")}% | {(r.ModeledMs is { } m ? F(m, "0.000") : "")} |");
        return s.ToString();
    }

    static void AppendDevice(StringBuilder s, DeviceInfo d)
    {
        string memory = d.TotalBytes < 0 ? "memory unknown" : $"{MemoryPool.FormatBytes(d.TotalBytes)} ({MemoryPool.FormatBytes(d.FreeBytes)} free)";
        s.AppendLine(Inv, $"- device: {d.Name}: {d.Description}, {memory}");
        foreach (var l in d.Libraries) s.AppendLine(Inv, $"- loaded: {l.Library} {l.Version} from `{l.Folder}` (`{Path.GetFileName(l.Path)}`)");
        foreach (var line in d.Plan.Describe()) s.AppendLine(Inv, $"- {line}");
    }

    void AppendTrainSteps(StringBuilder s)
    {
        if (TrainSteps.Count == 0) return;
        s.AppendLine().AppendLine("## Full SBP training step against the CPU (strided keep 0.5, AdamW)").AppendLine();
        s.AppendLine("| model | mode | batch | result | loss (CPU / device) | max grad diff | max weight diff | regions | device ms | detail |")
            .AppendLine("|---|---|---:|---|---|---:|---:|---:|---:|---|");
        foreach (var t in TrainSteps)
            s.AppendLine(Inv, $"| {t.Model} | {t.Mode} | {t.Batch} | {Result(t.Passed)} | {F(t.CpuLoss)} / {F(t.DeviceLoss)} | {F(t.MaxGradDiff, "G3")} | {F(t.MaxWeightDiff, "G3")} | {t.Regions} | {F(t.DeviceMs, "0")} | {Cell(t.Error ?? t.WorstGrad ?? t.WorstWeight)} |");
    }

    void AppendBench(StringBuilder s, BenchOptions b)
    {
        s.AppendLine().AppendLine(Inv, $"## Benchmark: {b.Model}, batch {b.Batch}, {b.Frames} x {b.Size} x {b.Size}, {b.Steps} timed steps after {b.Warmup} warm-up{(b.Tf32 ? ", TF32" : ", FP32")}").AppendLine();
        s.AppendLine("The pool's cache is emptied before each row; peaks are over that row's timed steps.").AppendLine();
        s.AppendLine("| mode | step (mean) ms | step (best) ms | peak in use MiB | peak reserved MiB | saved for backward MiB | vs full: time | vs full: peak |")
            .AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|");
        var full = BenchRows.FirstOrDefault(r => r.Keep == 1 && r.Error is null);   // Float32 full backprop: every row against it
        foreach (var r in BenchRows)
        {
            string time = full is null || r.Error is not null ? "-" : (r.MeanStepMs / full.MeanStepMs).ToString("0.00x", Inv);
            string peak = full is null || r.Error is not null ? "-" : ((double)r.PeakBytes / full.PeakBytes).ToString("0.00x", Inv);
            string line = r.Error is null
                ? string.Create(Inv, $"| {r.Mode} | {F(r.MeanStepMs, "0.0")} | {F(r.MinStepMs, "0.0")} | {MiB(r.PeakBytes)} | {MiB(r.PeakReservedBytes)} | {MiB(r.SavedBytes)} | {time} | {peak} |")
                : $"| {r.Mode} | - | - | - | - | - | {Cell(r.Error)} | |";
            s.AppendLine(line);
        }
    }

    static string Result(bool passed) => passed ? "ok" : "**FAIL**";

    static string Cell(string? text) => text is null ? "" : text.Replace("|", "\\|", StringComparison.Ordinal).Replace("\n", " ", StringComparison.Ordinal);
}
