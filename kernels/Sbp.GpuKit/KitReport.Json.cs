using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;
using Sbp.OpCases;

namespace Sbp.GpuKit;

/// <summary>report.json (Utf8JsonWriter: no reflection, AOT-safe).</summary>
public sealed partial class KitReport
{
    public byte[] ToJson()
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            w.WriteString("status", Status);
            w.WriteString("message", Message);
            w.WriteString("command", Command);
            w.WriteString("started_utc", Started.ToString("o", CultureInfo.InvariantCulture));
            Num(w, "total_seconds", TotalSeconds);
            Num(w, "budget_seconds", BudgetSeconds);
            w.WriteString("engine_version", EngineInfo.Version);
            w.WriteBoolean("passed", Passed);
            w.WriteNumber("exit_code", ExitCode);
            if (Device is { } d) WriteDevice(w, d);
            w.WriteStartArray("phases");
            foreach (var p in Phases)
            {
                w.WriteStartObject();
                w.WriteString("name", p.Name);
                w.WriteString("status", p.Status);
                Num(w, "seconds", p.Seconds);
                w.WriteString("detail", p.Detail);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            WriteOps(w, "ops", Ops);
            WriteOps(w, "large_ops", LargeOps);
            WriteTrainSteps(w);
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
            if (Bench is { } b) WriteBench(w, b);
            if (Profile is { } profile) WriteProfile(w, profile);
            w.WriteEndObject();
        }
        return stream.ToArray();
    }

    static void Num(Utf8JsonWriter w, string name, double v)
    {
        if (double.IsFinite(v)) w.WriteNumber(name, v);
        else w.WriteNull(name);
    }

    static void WriteDevice(Utf8JsonWriter w, DeviceInfo d)
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
            w.WriteString("folder", l.Folder);
            w.WriteString("version", l.Version);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        var p = d.Plan;
        w.WriteStartObject("library_plan");
        w.WriteString("cublas", p.Cublas);
        if (p.CublasMajor is { } major) w.WriteNumber("cublas_cuda_major", major);
        w.WriteString("cudnn_folder", p.CudnnFolder);
        if (p.CudnnWheelMajor is { } wheel) w.WriteNumber("cudnn_wheel_cuda_major", wheel);
        w.WriteString("refused", p.Mismatch);
        w.WriteStartArray("incomplete_cudnn_folders");
        foreach (var problem in p.Problems) w.WriteStringValue(problem);
        w.WriteEndArray();
        w.WriteStartArray("folders_searched");
        foreach (var folder in p.Folders) w.WriteStringValue(folder);
        w.WriteEndArray();
        w.WriteEndObject();
        w.WriteEndObject();
    }

    static void WriteOps(Utf8JsonWriter w, string name, List<OpResult> ops)
    {
        w.WriteStartArray(name);
        foreach (var o in ops)
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
    }

    void WriteTrainSteps(Utf8JsonWriter w)
    {
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
    }

    void WriteBench(Utf8JsonWriter w, BenchOptions b)
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
            w.WriteString("precision", r.Precision);
            Num(w, "mean_step_ms", r.MeanStepMs);
            Num(w, "min_step_ms", r.MinStepMs);
            w.WriteNumber("peak_bytes", r.PeakBytes);
            w.WriteNumber("peak_reserved_bytes", r.PeakReservedBytes);
            w.WriteNumber("saved_bytes", r.SavedBytes);
            Num(w, "loss", r.Loss);
            w.WriteString("error", r.Error);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();
    }

    static void WriteProfile(Utf8JsonWriter w, StepProfileResult p)
    {
        w.WriteStartObject("profile");
        w.WriteString("model", p.Options.Model);
        w.WriteNumber("batch", p.Options.Batch);
        w.WriteNumber("frames", p.Options.Frames);
        w.WriteNumber("size", p.Options.Size);
        w.WriteString("timing", p.Timing);
        Num(w, "forward_ms_events", p.ForwardMs);
        Num(w, "backward_ms_events", p.BackwardMs);
        Num(w, "optimizer_ms_events", p.OptimizerMs);
        w.WriteString("model_note", p.ModelNote);
        w.WriteStartObject("modeled");
        foreach (var (key, ms) in p.Modeled ?? new Dictionary<string, double>()) Num(w, key, ms);
        w.WriteEndObject();
        w.WriteStartArray("rows");
        foreach (var r in p.Rows)
        {
            w.WriteStartObject();
            w.WriteString("op", r.Op);
            w.WriteString("phase", r.Phase);
            w.WriteNumber("calls", r.Calls);
            Num(w, "ms", r.Ms);
            Num(w, "share", r.Share);
            if (r.ModeledMs is { } m) Num(w, "modeled_ms", m);
            else w.WriteNull("modeled_ms");
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();
    }
}
