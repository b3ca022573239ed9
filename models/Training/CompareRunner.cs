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
    public static IReadOnlyList<CompareRow> Run(IReadOnlyList<TrainConfig> runs, IVideoDataset train, IVideoDataset val, Device device, Action<string> log,
        CancellationToken cancel = default)
    {
        var rows = new List<CompareRow>();
        foreach (var run in runs)
        {
            var config = run.OutputDir is null ? run : run with { OutputDir = Path.Combine(run.OutputDir, run.Label) };
            rows.Add(RowOf(config, new Trainer(config, device, log, cancel).Run(train, val)));
        }
        return rows;
    }

    /// <summary>The row of one finished run.</summary>
    public static CompareRow RowOf(TrainConfig config, TrainResult r) =>
        new(config.Label, config.ModeName, config.Keep, r.Final.Top1, r.Final.Top5, r.Final.Map, r.PeakBytes,
            r.SavedActivationBytes, r.StepMs, r.Parameters, r.LossCurve, config.MaskDescription);

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

    /// <summary>What a comparison ran: model, data, epochs and device, for the table's heading and the plots' titles.</summary>
    public static string Title(TrainConfig config, string data, IVideoDataset train, IVideoDataset val, Device device) =>
        $"{config.Model} on {data} ({train.Count} train / {val.Count} held-out clips), {config.Epochs} epoch{(config.Epochs == 1 ? "" : "s")}, {device.Name}";

    /// <summary>The three plots of a comparison, as plot models (tests read their series, labels and axes).</summary>
    public sealed record PlotSet(ScottPlot.Plot Loss, ScottPlot.Plot Memory, ScottPlot.Plot Accuracy);

    // Distinguishable per mode in colour and in line pattern, so a curve under another still shows.
    static readonly ScottPlot.Color[] Palette = [ScottPlot.Colors.Black, ScottPlot.Colors.OrangeRed, ScottPlot.Colors.RoyalBlue, ScottPlot.Colors.ForestGreen,
        ScottPlot.Colors.DarkOrchid, ScottPlot.Colors.DarkGoldenRod, ScottPlot.Colors.Teal, ScottPlot.Colors.SaddleBrown];
    static readonly ScottPlot.LinePattern[] Patterns = [ScottPlot.LinePattern.Solid, ScottPlot.LinePattern.Dashed, ScottPlot.LinePattern.Dotted, ScottPlot.LinePattern.DenselyDashed];

    /// <summary>
    /// Loss curves (one styled line per mode, y from 0), memory (grouped bars per mode: saved activations
    /// and peak, each labelled with its MiB and ratio to full backprop, y from 0) and accuracy (a bar per
    /// mode labelled with its value, y from 0 to 100 %), each titled with what ran.
    /// </summary>
    public static PlotSet PlotModels(IReadOnlyList<CompareRow> rows, bool detection, string title)
    {
        var full = rows.FirstOrDefault(r => r.Mode == "full");
        var loss = new ScottPlot.Plot();
        double maxLoss = 0;
        for (int i = 0; i < rows.Count; i++)
        {
            var r = rows[i];
            var smooth = Smooth(r.LossCurve.Select(p => p.Loss).ToArray(), 5);
            maxLoss = Math.Max(maxLoss, smooth.DefaultIfEmpty(0).Max());
            var line = loss.Add.Scatter(r.LossCurve.Select(p => (double)p.Step).ToArray(), smooth);
            line.LegendText = r.Label;
            line.MarkerSize = 0;
            line.LineWidth = 2;
            line.Color = Palette[i % Palette.Length];
            line.LinePattern = Patterns[i % Patterns.Length];
        }
        Titled(loss, "Training loss", title);
        loss.XLabel("step");
        loss.YLabel("loss (moving mean of 5 steps)");
        loss.Axes.SetLimitsY(0, Math.Max(maxLoss, 1e-3) * 1.05);
        loss.ShowLegend();

        var memory = new ScottPlot.Plot();
        string Ratio(long v, long? reference) => reference is > 0 && rows.Count > 1 ? $" ({(double)v / reference.Value:0.00}x)" : "";
        var saved = GroupedBars(memory, rows, 0, r => r.SavedActivationBytes / 1048576.0, r => $"{r.SavedActivationBytes / 1048576.0:G3}{Ratio(r.SavedActivationBytes, full?.SavedActivationBytes)}", Palette[2]);
        var peak = GroupedBars(memory, rows, 1, r => r.PeakBytes / 1048576.0, r => $"{r.PeakBytes / 1048576.0:G3}{Ratio(r.PeakBytes, full?.PeakBytes)}", Palette[1]);
        saved.LegendText = "saved activations (MiB)";
        peak.LegendText = "peak memory (MiB)";
        Titled(memory, "Memory per mode", title);
        memory.YLabel("MiB (ratio to full backprop)");
        ModeTicks(memory, rows);
        memory.Axes.SetLimitsY(0, rows.Max(r => Math.Max(r.PeakBytes, r.SavedActivationBytes)) / 1048576.0 * 1.35);
        memory.ShowLegend(ScottPlot.Alignment.UpperLeft);

        var accuracy = new ScottPlot.Plot();
        var acc = GroupedBars(accuracy, rows, -1, r => 100 * (detection ? r.Map ?? 0 : r.Top1), r => $"{100 * (detection ? r.Map ?? 0 : r.Top1):0.0} %", Palette[3]);
        acc.LegendText = detection ? "per-frame mAP (%)" : "held-out top-1 (%)";
        Titled(accuracy, "Accuracy per mode", title);
        accuracy.YLabel("%");
        ModeTicks(accuracy, rows);
        accuracy.Axes.SetLimitsY(0, 115);
        accuracy.ShowLegend(ScottPlot.Alignment.UpperLeft);
        return new PlotSet(loss, memory, accuracy);
    }

    /// <summary>One bar per mode at the mode's position (slot 0 or 1 of a pair, -1 alone), labelled on top.</summary>
    static ScottPlot.Plottables.BarPlot GroupedBars(ScottPlot.Plot plot, IReadOnlyList<CompareRow> rows, int slot, Func<CompareRow, double> value, Func<CompareRow, string> label, ScottPlot.Color color)
    {
        double width = slot < 0 ? 0.6 : 0.4, shift = slot < 0 ? 0 : (slot - 0.5) * width;
        var bars = rows.Select((r, i) => new ScottPlot.Bar { Position = i + shift, Value = value(r), Size = width, FillColor = color, Label = label(r) }).ToArray();
        var plottable = plot.Add.Bars(bars);
        plottable.ValueLabelStyle.FontSize = 11;
        return plottable;
    }

    /// <summary>What the plot shows, and on a second line what ran.</summary>
    static void Titled(ScottPlot.Plot plot, string what, string run)
    {
        plot.Title($"{what}\n{run}");
        plot.Axes.Title.Label.FontSize = 14;
    }

    static void ModeTicks(ScottPlot.Plot plot, IReadOnlyList<CompareRow> rows) =>
        plot.Axes.Bottom.SetTicks([.. Enumerable.Range(0, rows.Count).Select(i => (double)i)], [.. rows.Select(r => r.Label)]);

    /// <summary>The plots of <see cref="PlotModels"/> as loss.png, memory.png and accuracy.png in <paramref name="dir"/>.</summary>
    public static IReadOnlyList<string> Plots(IReadOnlyList<CompareRow> rows, string dir, bool detection, string title)
    {
        Directory.CreateDirectory(dir);
        var set = PlotModels(rows, detection, title);
        return [Save(set.Loss, dir, "loss.png"), Save(set.Memory, dir, "memory.png"), Save(set.Accuracy, dir, "accuracy.png")];
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
