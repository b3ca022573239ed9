using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Sbp.Memory;
using Sbp.OpCases;

namespace Sbp.GpuKit;

/// <summary>Everything one gpu-check run found; written as report.json and report.md (Utf8JsonWriter: no reflection, AOT-safe).</summary>
public sealed class KitReport
{
    public string Status { get; set; } = "ok";
    public string? Message { get; set; }
    public string Command { get; set; } = "";
    public DateTimeOffset Started { get; } = DateTimeOffset.UtcNow;
    public double TotalSeconds { get; set; }
    public DeviceInfo? Device { get; set; }
    public List<OpResult> Ops { get; } = [];
    public List<TrainStepResult> TrainSteps { get; } = [];
    public NcclCheckResult? Nccl { get; set; }
    public BenchOptions? Bench { get; set; }
    public List<BenchRow> BenchRows { get; } = [];

    public bool Passed => (Status is "ok" or "failed") && Ops.All(o => o.Passed) && TrainSteps.All(t => t.Passed) && (Nccl?.Passed ?? true) && BenchRows.All(b => b.Error is null);

    static string F(double v, string format = "G6") => double.IsFinite(v) ? v.ToString(format, CultureInfo.InvariantCulture) : "-";

    static string MiB(long bytes) => (bytes / (1024.0 * 1024.0)).ToString("0.0", CultureInfo.InvariantCulture);

    /// <summary>Writes report.json and report.md into <paramref name="dir"/>; returns their paths.</summary>
    public (string Json, string Markdown) Write(string dir)
    {
        Directory.CreateDirectory(dir);
        string json = Path.Combine(dir, "report.json"), md = Path.Combine(dir, "report.md");
        File.WriteAllBytes(json, ToJson());
        File.WriteAllText(md, ToMarkdown());
        return (json, md);
    }

    public byte[] ToJson()
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            static void Num(Utf8JsonWriter w, string name, double v)
            {
                if (double.IsFinite(v)) w.WriteNumber(name, v);
                else w.WriteNull(name);
            }

            w.WriteStartObject();
            w.WriteString("status", Status);
            w.WriteString("message", Message);
            w.WriteString("command", Command);
            w.WriteString("started_utc", Started.ToString("o", CultureInfo.InvariantCulture));
            Num(w, "total_seconds", TotalSeconds);
            w.WriteString("engine_version", EngineInfo.Version);
            w.WriteBoolean("passed", Passed);
            if (Device is { } d)
            {
                w.WriteStartObject("device");
                w.WriteString("name", d.Name);
                w.WriteString("description", d.Description);
                w.WriteNumber("total_bytes", d.TotalBytes);
                w.WriteNumber("free_bytes", d.FreeBytes);
                w.WriteStartArray("libraries");
                foreach (var l in d.Libraries)
                {
                    w.WriteStartObject();
                    w.WriteString("library", l.Library);
                    w.WriteString("path", l.Path);
                    w.WriteString("version", l.Version);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteStartArray("ops");
            foreach (var o in Ops)
            {
                w.WriteStartObject();
                w.WriteString("name", o.Name);
                w.WriteBoolean("passed", o.Passed);
                Num(w, "max_abs_diff", o.MaxAbsDiff);
                Num(w, "max_rel_diff", o.MaxRelDiff);
                w.WriteString("worst", o.Worst);
                w.WriteString("error", o.Error);
                Num(w, "ms", o.Ms);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartArray("train_steps");
            foreach (var t in TrainSteps)
            {
                w.WriteStartObject();
                w.WriteString("model", t.Model);
                w.WriteString("mode", t.Mode);
                w.WriteNumber("batch", t.Batch);
                w.WriteBoolean("passed", t.Passed);
                Num(w, "cpu_loss", t.CpuLoss);
                Num(w, "device_loss", t.DeviceLoss);
                Num(w, "max_grad_diff", t.MaxGradDiff);
                w.WriteString("worst_grad", t.WorstGrad);
                Num(w, "max_weight_diff", t.MaxWeightDiff);
                w.WriteString("worst_weight", t.WorstWeight);
                w.WriteNumber("regions", t.Regions);
                Num(w, "device_ms", t.DeviceMs);
                Num(w, "cpu_ms", t.CpuMs);
                w.WriteString("error", t.Error);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            if (Nccl is { } n)
            {
                w.WriteStartObject("nccl");
                w.WriteString("status", n.Status);
                w.WriteBoolean("passed", n.Passed);
                w.WriteString("library", n.Library);
                w.WriteString("detail", n.Detail);
                Num(w, "ms", n.Ms);
                w.WriteEndObject();
            }
            if (Bench is { } b)
            {
                w.WriteStartObject("benchmark");
                w.WriteString("model", b.Model);
                w.WriteNumber("batch", b.Batch);
                w.WriteNumber("frames", b.Frames);
                w.WriteNumber("size", b.Size);
                w.WriteNumber("warmup_steps", b.Warmup);
                w.WriteNumber("timed_steps", b.Steps);
                w.WriteBoolean("tf32", b.Tf32);
                w.WriteNumber("target_ms", b.TargetMs);
                w.WriteStartArray("rows");
                foreach (var r in BenchRows)
                {
                    w.WriteStartObject();
                    w.WriteString("mode", r.Mode);
                    w.WriteNumber("keep", r.Keep);
                    Num(w, "mean_step_ms", r.MeanStepMs);
                    Num(w, "min_step_ms", r.MinStepMs);
                    w.WriteNumber("peak_bytes", r.PeakBytes);
                    w.WriteNumber("saved_bytes", r.SavedBytes);
                    Num(w, "loss", r.Loss);
                    w.WriteString("error", r.Error);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndObject();
        }
        return stream.ToArray();
    }

    public string ToMarkdown()
    {
        var s = new StringBuilder();
        var inv = CultureInfo.InvariantCulture;
        s.AppendLine("# sbp-gpu report").AppendLine();
        s.AppendLine(inv, $"- status: **{Status}**{(Message is null ? "" : $" — {Message}")}");
        s.AppendLine(inv, $"- command: `{Command}`");
        s.AppendLine(inv, $"- started: {Started:u}, took {F(TotalSeconds, "0.0")} s; engine {EngineInfo.Version}");
        if (Device is { } d)
        {
            s.AppendLine(inv, $"- device: {d.Name}: {d.Description}, {MemoryPool.FormatBytes(d.TotalBytes)} ({MemoryPool.FormatBytes(d.FreeBytes)} free)");
            foreach (var l in d.Libraries) s.AppendLine(inv, $"- {l.Library} {l.Version} (`{l.Path}`)");
        }
        if (Ops.Count > 0)
        {
            s.AppendLine().AppendLine(inv, $"## Ops against the CPU backend ({Ops.Count(o => o.Passed)}/{Ops.Count} passed)").AppendLine();
            s.AppendLine("| op | result | max abs diff | max rel diff | detail |").AppendLine("|---|---|---:|---:|---|");
            foreach (var o in Ops)
                s.AppendLine(inv, $"| {o.Name} | {(o.Passed ? "ok" : "**FAIL**")} | {F(o.MaxAbsDiff, "G3")} | {F(o.MaxRelDiff, "G3")} | {Cell(o.Error ?? o.Worst)} |");
        }
        if (TrainSteps.Count > 0)
        {
            s.AppendLine().AppendLine("## Full SBP training step against the CPU (strided keep 0.5, AdamW)").AppendLine();
            s.AppendLine("| model | mode | batch | result | loss (CPU / device) | max grad diff | max weight diff | regions | device ms | detail |")
                .AppendLine("|---|---|---:|---|---|---:|---:|---:|---:|---|");
            foreach (var t in TrainSteps)
                s.AppendLine(inv, $"| {t.Model} | {t.Mode} | {t.Batch} | {(t.Passed ? "ok" : "**FAIL**")} | {F(t.CpuLoss)} / {F(t.DeviceLoss)} | {F(t.MaxGradDiff, "G3")} | {F(t.MaxWeightDiff, "G3")} | {t.Regions} | {F(t.DeviceMs, "0")} | {Cell(t.Error ?? t.WorstGrad ?? t.WorstWeight)} |");
        }
        if (Nccl is { } n)
        {
            s.AppendLine().AppendLine("## NCCL (one rank: all-reduce and broadcast through NcclCommunicator)").AppendLine();
            s.AppendLine(inv, $"- {(n.Status == "failed" ? "**FAIL**" : n.Status)}: {n.Detail}{(n.Library.Length > 0 ? $" ({n.Library}, {F(n.Ms, "0")} ms)" : "")}");
        }
        if (Bench is { } b)
        {
            s.AppendLine().AppendLine(inv, $"## Benchmark: {b.Model}, batch {b.Batch}, {b.Frames} x {b.Size} x {b.Size}, {b.Steps} timed steps after {b.Warmup} warm-up{(b.Tf32 ? ", TF32" : ", FP32")}").AppendLine();
            s.AppendLine("| mode | step (mean) ms | step (best) ms | peak device memory MiB | saved for backward MiB | vs full: time | vs full: peak |")
                .AppendLine("|---|---:|---:|---:|---:|---:|---:|");
            var full = BenchRows.FirstOrDefault(r => r.Keep == 1 && r.Error is null);
            foreach (var r in BenchRows)
            {
                string time = full is null || r.Error is not null ? "-" : (r.MeanStepMs / full.MeanStepMs).ToString("0.00x", inv);
                string peak = full is null || r.Error is not null ? "-" : ((double)r.PeakBytes / full.PeakBytes).ToString("0.00x", inv);
                string line = r.Error is null
                    ? string.Create(inv, $"| {r.Mode} | {F(r.MeanStepMs, "0.0")} | {F(r.MinStepMs, "0.0")} | {MiB(r.PeakBytes)} | {MiB(r.SavedBytes)} | {time} | {peak} |")
                    : $"| {r.Mode} | - | - | - | - | {Cell(r.Error)} | |";
                s.AppendLine(line);
            }
        }
        return s.ToString();
    }

    static string Cell(string? text) => text is null ? "" : text.Replace("|", "\\|", StringComparison.Ordinal).Replace("\n", " ", StringComparison.Ordinal);
}
