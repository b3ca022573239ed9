using Sbp.Models.Training;

namespace Sbp.Cli;

/// <summary>The plots of <c>sbp compare --plots DIR</c>: training loss, memory and accuracy per mode.</summary>
public static class ComparePlots
{
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
        // an 800-pixel plot shows about 90 characters of the title: longer run descriptions wrap at a comma
        int cut = run.Length > 90 ? run.LastIndexOf(", ", 90, StringComparison.Ordinal) : -1;
        if (cut > 0) run = run[..cut] + ",\n" + run[(cut + 2)..];
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
