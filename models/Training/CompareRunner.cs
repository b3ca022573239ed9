using System.Globalization;
using System.Text;
using System.Text.Json;
using Sbp.Memory;
using Sbp.Models.Data;
using Sbp.Tensors;

namespace Sbp.Models.Training;

/// <summary>One row of a comparison: a mode's accuracy, memory and speed.</summary>
public sealed record CompareRow(string Label, string Mode, double Keep, double Top1, double Top5, double? Map, long PeakBytes,
    long SavedActivationBytes, double StepMs, long Parameters, IReadOnlyList<(long Step, double Loss)> LossCurve, string Masks = "none");

/// <summary>
/// `sbp compare`: trains the same model on the same data and seed in several modes (full backprop,
/// checkpointing, SBP at chosen keep ratios), then prints a table, and writes JSON and PNG plots.
/// </summary>
public static class CompareRunner
{
    /// <summary>The run of one mode ("full", "checkpoint", "sbp:0.5", "sbp+checkpoint:0.25"; see <see cref="ModeSpec"/>).</summary>
    public static TrainConfig ConfigFor(TrainConfig baseConfig, string mode) => ConfigFor(baseConfig, ModeSpec.Parse(mode, "--modes"));

    public static TrainConfig ConfigFor(TrainConfig baseConfig, ModeSpec mode) => baseConfig with { Mode = mode.Mode, Keep = mode.Keep };

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
    /// Checks every planned SBP run against the model built for the data (its regions' mask rules), before
    /// the first run trains: the model is built once on a CPU device of its own and freed.
    /// </summary>
    public static void CheckModel(IReadOnlyList<TrainConfig> runs, IVideoDataset train)
    {
        if (runs.All(r => r.Mode == TrainMode.Full)) return;
        var probe = train.Get(0, null).Clip;
        using var model = Trainer.CreateModel(runs[0].Model, train, probe.Frames, probe.Height, probe.Width, runs[0].Seed, Device.CreateCpu("sbp-check"));
        foreach (var run in runs)
            if (Trainer.PolicyFor(run, model) is { } policy && model.SbpProblem(policy) is { } problem)
                throw new ArgumentException($"{run.Label}: {problem}");
    }

    /// <summary>Trains each planned run in turn (per-mode output folders under the base config's).</summary>
    public static IReadOnlyList<CompareRow> Run(IReadOnlyList<TrainConfig> runs, IVideoDataset train, IVideoDataset val, Device device, Action<string> log)
    {
        var rows = new List<CompareRow>();
        foreach (var run in runs)
        {
            var config = run.OutputDir is null ? run : run with { OutputDir = Path.Combine(run.OutputDir, run.Label) };
            var r = new Trainer(config, device, log).Run(train, val);
            rows.Add(new CompareRow(config.Label, config.ModeName, config.Keep, r.Final.Top1, r.Final.Top5, r.Final.Map, r.PeakBytes,
                r.SavedActivationBytes, r.StepMs, r.Parameters, r.LossCurve, config.MaskDescription));
        }
        return rows;
    }

    /// <summary>A plain-text table, full backprop (the first row) as the reference for the relative columns.</summary>
    public static string Table(IReadOnlyList<CompareRow> rows, bool detection)
    {
        var sb = new StringBuilder();
        var reference = rows.FirstOrDefault(r => r.Mode == "full") ?? rows[0];
        string metric = detection ? "mAP" : "top-1";
        sb.AppendLine(CultureInfo.InvariantCulture, $"| mode | keep | {metric} | {(detection ? "frame top-1" : "top-5")} | peak memory | saved activations | vs full | step ms | vs full |");
        sb.AppendLine("|---|---|---|---|---|---|---|---|---|");
        foreach (var r in rows)
        {
            double acc = detection ? r.Map ?? 0 : r.Top1, second = detection ? r.Top1 : r.Top5;
            sb.AppendLine(CultureInfo.InvariantCulture,
                $"| {r.Label} | {r.Keep:0.###} | {acc:P1} | {second:P1} | {MemoryPool.FormatBytes(r.PeakBytes)} | {MemoryPool.FormatBytes(r.SavedActivationBytes)} | " +
                $"{(double)r.SavedActivationBytes / Math.Max(1, reference.SavedActivationBytes):0.00}x | {r.StepMs:0} | {r.StepMs / Math.Max(1e-9, reference.StepMs):0.00}x |");
        }
        return sb.ToString();
    }

    /// <summary>The rows as a JSON list (one object per mode), the format `--json` writes.</summary>
    public static string Json(IReadOnlyList<CompareRow> rows, string model, string dataset, string device) =>
        JsonSerializer.Serialize(rows.Select(r => new Dictionary<string, object?>
        {
            ["mode"] = r.Mode,
            ["label"] = r.Label,
            ["keep"] = r.Keep,
            ["masks"] = r.Masks,
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
        }), new JsonSerializerOptions { WriteIndented = true });

    /// <summary>Loss curves, memory vs keep and accuracy vs keep as PNG files in <paramref name="dir"/>.</summary>
    public static IReadOnlyList<string> Plots(IReadOnlyList<CompareRow> rows, string dir, bool detection)
    {
        Directory.CreateDirectory(dir);
        var files = new List<string>();
        var loss = new ScottPlot.Plot();
        foreach (var r in rows)
        {
            var smooth = Smooth(r.LossCurve.Select(p => p.Loss).ToArray(), 5);
            var line = loss.Add.Scatter(r.LossCurve.Select(p => (double)p.Step).ToArray(), smooth);
            line.LegendText = r.Label;
            line.MarkerSize = 0;
        }
        loss.Title("Training loss");
        loss.XLabel("step");
        loss.YLabel("loss (moving mean of 5)");
        loss.ShowLegend();
        files.Add(Save(loss, dir, "loss.png"));

        var keeps = rows.Select(r => r.Keep).ToArray();
        var memory = new ScottPlot.Plot();
        var saved = memory.Add.Scatter(keeps, rows.Select(r => r.SavedActivationBytes / 1048576.0).ToArray());
        saved.LegendText = "saved activations (MiB)";
        var peak = memory.Add.Scatter(keeps, rows.Select(r => r.PeakBytes / 1048576.0).ToArray());
        peak.LegendText = "peak memory (MiB)";
        memory.Title("Memory vs keep ratio");
        memory.XLabel("keep ratio (1 = full backprop or checkpointing)");
        memory.YLabel("MiB");
        memory.ShowLegend();
        files.Add(Save(memory, dir, "memory.png"));

        var accuracy = new ScottPlot.Plot();
        var acc = accuracy.Add.Scatter(keeps, rows.Select(r => 100 * (detection ? r.Map ?? 0 : r.Top1)).ToArray());
        acc.LegendText = detection ? "per-frame mAP (%)" : "top-1 (%)";
        accuracy.Title("Accuracy vs keep ratio");
        accuracy.XLabel("keep ratio");
        accuracy.YLabel("%");
        accuracy.ShowLegend();
        files.Add(Save(accuracy, dir, "accuracy.png"));
        return files;
    }

    static string Save(ScottPlot.Plot plot, string dir, string name)
    {
        var path = Path.Combine(dir, name);
        plot.SavePng(path, 800, 500);
        return path;
    }

    static double[] Smooth(double[] values, int window)
    {
        var result = new double[values.Length];
        for (int i = 0; i < values.Length; i++)
        {
            int from = Math.Max(0, i - window + 1);
            double sum = 0;
            for (int j = from; j <= i; j++) sum += values[j];
            result[i] = sum / (i - from + 1);
        }
        return result;
    }
}
