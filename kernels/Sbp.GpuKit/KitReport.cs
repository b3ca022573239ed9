using System.Globalization;
using System.Text;
using Sbp.OpCases;

namespace Sbp.GpuKit;

/// <summary>
/// Everything one gpu-check run found; written as report.json (KitReport.Json.cs), report.md (KitReport.Markdown.cs),
/// phases.txt (one line per phase: name, status, seconds, detail; tab-separated) and failed-cases.txt (the names of the
/// failed op cases, one a line, for `--case NAME` reruns). Rewritten after each phase.
/// </summary>
public sealed partial class KitReport
{
    /// <summary>"ok", "failed", "incomplete", or why nothing ran ("no-driver", "no-device", "cuda-init-failed").</summary>
    public string Status { get; set; } = "ok";
    public string? Message { get; set; }
    public string Command { get; set; } = "";
    public DateTimeOffset Started { get; } = DateTimeOffset.UtcNow;
    public double TotalSeconds { get; set; }
    public double BudgetSeconds { get; set; }
    public DeviceInfo? Device { get; set; }
    public List<PhaseResult> Phases { get; } = [];
    public List<OpResult> Ops { get; } = [];
    /// <summary>The large-shape cases (<see cref="LargeOps"/>); each result's Ms is the device time by CUDA events.</summary>
    public List<OpResult> LargeOps { get; } = [];
    public List<TrainStepResult> TrainSteps { get; } = [];
    public NcclCheckResult? Nccl { get; set; }
    public BenchOptions? Bench { get; set; }
    public List<BenchRow> BenchRows { get; } = [];
    public StepProfileResult? Profile { get; set; }

    /// <summary>Every check that ran passed and no phase failed; skipped or incomplete phases are judged by <see cref="ExitCode"/>.</summary>
    public bool Passed => Status is "ok" or "failed" or "incomplete"
        && Phases.All(p => p.Status != "failed")
        && Ops.All(o => o.Passed) && LargeOps.All(o => o.Passed) && TrainSteps.All(t => t.Passed) && (Nccl?.Passed ?? true)
        && BenchRows.All(b => b.Error is null);

    /// <summary>True when a phase was skipped or stopped early (for the budget); a sticky error also fails its phase.</summary>
    public bool Incomplete => Phases.Any(p => p.Status is "skipped" or "incomplete");

    /// <summary>0 passed, 1 a check failed, 3 incomplete (what ran passed, but not everything ran).</summary>
    public int ExitCode => !Passed ? 1 : Incomplete ? 3 : 0;

    /// <summary>Every failed op case, table and large.</summary>
    public IEnumerable<OpResult> FailedOps => Ops.Concat(LargeOps).Where(o => !o.Passed);

    static string F(double v, string format = "G6") => double.IsFinite(v) ? v.ToString(format, CultureInfo.InvariantCulture) : "-";

    static string MiB(long bytes) => (bytes / (1024.0 * 1024.0)).ToString("0.0", CultureInfo.InvariantCulture);

    /// <summary>Writes report.json, report.md, phases.txt and failed-cases.txt into <paramref name="dir"/>; returns the first two paths.</summary>
    public (string Json, string Markdown) Write(string dir)
    {
        Directory.CreateDirectory(dir);
        string json = Path.Combine(dir, "report.json"), md = Path.Combine(dir, "report.md");
        Replace(json, ToJson());
        Replace(md, Encoding.UTF8.GetBytes(ToMarkdown()));
        Replace(Path.Combine(dir, "phases.txt"), Encoding.UTF8.GetBytes(string.Concat(Phases.Select(p =>
            string.Create(CultureInfo.InvariantCulture, $"{p.Name}\t{p.Status}\t{p.Seconds:0.0}\t{OneLine(p.Detail)}\n")))));
        Replace(Path.Combine(dir, "failed-cases.txt"), Encoding.UTF8.GetBytes(string.Concat(FailedOps.Select(o => o.Name + "\n"))));
        return (json, md);
    }

    /// <summary>Writes a whole new file, then renames it over the old one: a reader (or a kill) never sees half a report.</summary>
    static void Replace(string path, byte[] content)
    {
        string temporary = path + ".tmp";
        File.WriteAllBytes(temporary, content);
        File.Move(temporary, path, overwrite: true);
    }

    static string OneLine(string? text) => text is null ? "" : text.Replace('\t', ' ').Replace('\n', ' ');
}
