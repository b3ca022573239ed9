using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Sbp.Memory;
using Sbp.Models.Data;
using Sbp.Tensors;

namespace Sbp.Models.Training;

/// <summary>One row of a comparison: a mode's accuracy, memory and speed.</summary>
public sealed record CompareRow(string Label, string Mode, double Keep, double Top1, double Top5, double? Map, long PeakBytes,
    long SavedActivationBytes, double StepMs, long Parameters, IReadOnlyList<(long Step, double Loss)> LossCurve, string Masks = "none", string Precision = "fp32", ulong Seed = 1);

/// <summary>
/// `sbp compare`: trains the same model on the same data and seed in several modes (full backprop,
/// checkpointing, SBP at chosen keep ratios), then prints a table, and writes JSON and PNG plots.
/// </summary>
public static class CompareRunner
{
    /// <summary>The run of one mode ("full", "checkpoint", "sbp:0.5", "sbp+checkpoint:0.25"; see <see cref="ModeSpec"/>).</summary>
    public static TrainConfig ConfigFor(TrainConfig baseConfig, string mode) => ConfigFor(baseConfig, ModeSpec.Parse(mode, "--modes"));

    public static TrainConfig ConfigFor(TrainConfig baseConfig, ModeSpec mode) =>
        baseConfig with { Mode = mode.Mode, Keep = mode.Keep, Precision = mode.Precision ?? baseConfig.Precision };

    /// <summary>
    /// Parses every mode of a comparison and checks each run's settings, so that a bad value stops the
    /// comparison before the first mode trains. Returns the runs in order.
    /// </summary>
    public static IReadOnlyList<TrainConfig> Plan(TrainConfig baseConfig, string modes)
    {
        var list = modes.Split(',', StringSplitOptions.TrimEntries);
        if (list.All(m => m.Length == 0)) throw new ArgumentException($"--modes is empty; give one or more of {ModeSpec.Forms}, separated by commas.");
        var configs = new List<TrainConfig>();
        foreach (var m in list)
        {
            if (m.Length == 0) throw new ArgumentException($"--modes '{modes}' has an empty entry; separate modes with single commas.");
            var config = ConfigFor(baseConfig, m);
            config.Validate();
            if (configs.Any(c => c.Label == config.Label)) throw new ArgumentException($"--modes names {config.Label} twice.");
            configs.Add(config);
        }
        return configs;
    }

    public static IReadOnlyList<CompareRow> Run(TrainConfig baseConfig, IEnumerable<string> modes, IVideoDataset train, IVideoDataset val,
        Device device, Action<string> log) => Run(Plan(baseConfig, string.Join(',', modes)), train, val, device, log);

    /// <summary>
    /// Checks the model against the data (labels per clip or per frame) and every planned SBP run against the
    /// model built for the data (its regions' mask rules), before the first run trains: for SBP runs the model
    /// is built once on a CPU device of its own and freed.
    /// </summary>
    public static void CheckModel(IReadOnlyList<TrainConfig> runs, IVideoDataset train)
    {
        Trainer.CheckLabels(runs[0].Model, train);
        if (runs.All(r => r.Mode == TrainMode.Full)) return;
        using var model = Trainer.CreateModel(runs[0].Model, train, train.ClipFrames, train.Transform.Height, train.Transform.Width, runs[0].Seed, Device.CreateCpu("sbp-check"));
        foreach (var run in runs)
            if (Trainer.PolicyFor(run, model) is { } policy && model.SbpProblem(policy) is { } problem)
                throw new ArgumentException($"{run.Label}: {problem}");
    }

    /// <summary>Trains each planned run in turn (per-mode output folders under the base config's).</summary>
    public static IReadOnlyList<CompareRow> Run(IReadOnlyList<TrainConfig> runs, IVideoDataset train, IVideoDataset val, Device device, Action<string> log,
        CancellationToken cancel = default, Distributed.Communicator? communicator = null)
    {
        var rows = new List<CompareRow>();
        train.Preload();   // synthetic clips rendered before the first run, not beside its first epoch's steps
        val.Preload();
        foreach (var run in runs)
        {
            var config = run.OutputDir is null ? run : run with { OutputDir = Path.Combine(run.OutputDir, run.Label) };
            rows.Add(RowOf(config, new Trainer(config, device, log, cancel, communicator).Run(train, val)));
        }
        return rows;
    }

    /// <summary>The row of one finished run.</summary>
    public static CompareRow RowOf(TrainConfig config, TrainResult r) =>
        new(config.Label, config.ModeName, config.Keep, r.Final.Top1, r.Final.Top5, r.Final.Map, r.PeakBytes,
            r.SavedActivationBytes, r.StepMs, r.Parameters, r.LossCurve, config.MaskDescription, ModeSpec.PrecisionName(config.Precision), config.Seed);

    /// <summary>
    /// A markdown table of the runs. With a full-backprop row among several, each of peak memory, saved
    /// activations and step time gets its ratio to full backprop next to it ("peak vs full", ...); a
    /// single run, or runs without full backprop, get no ratios (there is nothing to compare with).
    /// </summary>
    public static string Table(IReadOnlyList<CompareRow> rows, bool detection)
    {
        var sb = new StringBuilder();
        var reference = rows.Count > 1 ? rows.FirstOrDefault(r => r.Mode == "full") : null;
        string metric = detection ? "mAP" : "top-1";
        string Ratio(double value, double full) => reference is null ? "" : string.Create(CultureInfo.InvariantCulture, $" {value / Math.Max(1e-9, full):0.00}x |");
        string RatioHead(string what) => reference is null ? "" : $" {what} vs full |";
        sb.AppendLine(CultureInfo.InvariantCulture,
            $"| mode | keep | {metric} | {(detection ? "frame top-1" : "top-5")} | peak memory |{RatioHead("peak")} saved activations |{RatioHead("saved")} step ms |{RatioHead("step")}");
        sb.AppendLine("|---|---|---|---|---|" + (reference is null ? "---|---|" : "---|---|---|---|---|"));
        foreach (var r in rows)
        {
            double acc = detection ? r.Map ?? 0 : r.Top1, second = detection ? r.Top1 : r.Top5;
            sb.AppendLine(CultureInfo.InvariantCulture,
                $"| {r.Label} | {r.Keep:0.###} | {acc:P1} | {second:P1} | {MemoryPool.FormatBytes(r.PeakBytes)} |{Ratio(r.PeakBytes, reference?.PeakBytes ?? 1)} " +
                $"{MemoryPool.FormatBytes(r.SavedActivationBytes)} |{Ratio(r.SavedActivationBytes, reference?.SavedActivationBytes ?? 1)} {r.StepMs:0} |{Ratio(r.StepMs, reference?.StepMs ?? 1)}");
        }
        return sb.ToString();
    }

    /// <summary>The rows as a JSON list (one object per mode), the format `--json` writes.</summary>
    public static string Json(IReadOnlyList<CompareRow> rows, string model, string dataset, string device) =>
        new JsonArray([.. rows.Select(r => new JsonObject
        {
            ["mode"] = r.Mode,
            ["label"] = r.Label,
            ["keep"] = r.Keep,
            ["precision"] = r.Precision,
            ["masks"] = r.Masks,
            ["seed"] = r.Seed,
            ["top1"] = r.Top1,
            ["top5"] = r.Top5,
            ["map"] = r.Map,
            ["peak_bytes"] = r.PeakBytes,
            ["saved_activation_bytes"] = r.SavedActivationBytes,
            ["step_ms"] = Math.Round(r.StepMs, 2),
            ["parameters"] = r.Parameters,
            ["model"] = model,
            ["dataset"] = dataset,
            ["device"] = device,
            ["final_loss"] = r.LossCurve.Count == 0 ? null : r.LossCurve[^1].Loss,
        })]).ToJsonString(new JsonSerializerOptions { WriteIndented = true });

    /// <summary>What a comparison ran: model, data, epochs and device, for the table's heading and the plots' titles.</summary>
    public static string Title(TrainConfig config, string data, IVideoDataset train, IVideoDataset val, Device device) =>
        $"{config.Model} on {data} ({train.Count} train / {val.Count} held-out clips), {config.Epochs} epoch{(config.Epochs == 1 ? "" : "s")}, {device.Name}";
}
