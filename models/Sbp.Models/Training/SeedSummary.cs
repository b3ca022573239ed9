using System.Globalization;
using System.Text;

namespace Sbp.Models.Training;

/// <summary>
/// `sbp compare --seeds`: one comparison repeated with several seeds (weights, masks, data order and synthetic data
/// all change with the seed), summarised per mode. A small task's accuracy can swing by points between seeds, so
/// a claim like "SBP within a point of full backprop" needs the spread and the per-seed differences, not one run.
/// </summary>
public static class SeedSummary
{
    /// <summary>
    /// The seeds of <c>--seeds</c> ("1,2,3"): at least two, distinct, each a whole number; checked before anything trains.
    /// </summary>
    public static IReadOnlyList<ulong> Parse(string text)
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries);
        var seeds = new List<ulong>();
        foreach (var p in parts)
        {
            if (!ulong.TryParse(p, NumberStyles.None, CultureInfo.InvariantCulture, out var s))
                throw new ArgumentException($"--seeds '{text}': '{p}' is not a seed (a whole number 0 or more); give seeds separated by commas, e.g. 1,2,3.");
            if (seeds.Contains(s)) throw new ArgumentException($"--seeds '{text}' names seed {s} twice.");
            seeds.Add(s);
        }
        if (seeds.Count < 2) throw new ArgumentException($"--seeds '{text}' names one seed; give two or more (or --seed for a single run).");
        return seeds;
    }

    /// <summary>
    /// A markdown table with a line per mode (in the order the modes ran): the seeds it ran with, mean accuracy, the
    /// sample standard deviation, the lowest and highest, and, with full backprop among the modes, the mean of the
    /// per-seed differences to full backprop (same seed, so same data and start) and the mode's mean step time.
    /// </summary>
    /// <param name="rows">Every run's row, each with its <see cref="CompareRow.Seed"/>.</param>
    /// <param name="detection">Detection runs: mAP instead of top-1.</param>
    public static string Table(IReadOnlyList<CompareRow> rows, bool detection)
    {
        string metric = detection ? "mAP" : "top-1";
        double Value(CompareRow r) => 100 * (detection ? r.Map ?? 0 : r.Top1);
        var full = rows.Where(r => r.Mode == "full").ToDictionary(r => r.Seed);
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"| mode | seeds | {metric} mean | std (points) | min | max | vs full (mean of per-seed differences) | per seed | step ms |");
        sb.AppendLine("|---|---|---|---|---|---|---|---|---|");
        foreach (var group in rows.GroupBy(r => r.Label))
        {
            var runs = group.ToList();
            var values = runs.Select(Value).ToList();
            double mean = values.Average();
            double std = values.Count < 2 ? 0 : Math.Sqrt(values.Sum(v => (v - mean) * (v - mean)) / (values.Count - 1));
            var paired = runs.Where(r => r.Mode != "full" && full.ContainsKey(r.Seed)).Select(r => Value(r) - Value(full[r.Seed])).ToList();
            string versus = paired.Count == 0 ? "" : string.Create(CultureInfo.InvariantCulture,
                $"{paired.Average():+0.0;-0.0;0.0} points (from {paired.Min():+0.0;-0.0;0.0} to {paired.Max():+0.0;-0.0;0.0})");
            string perSeed = string.Join(", ", runs.Select(r => string.Create(CultureInfo.InvariantCulture, $"{r.Seed}: {Value(r):0.0}")));
            sb.AppendLine(CultureInfo.InvariantCulture,
                $"| {group.Key} | {runs.Count} | {mean:0.0} % | {std:0.0} | {values.Min():0.0} % | {values.Max():0.0} % | {versus} | {perSeed} | {runs.Average(r => r.StepMs):0} |");
        }
        return sb.ToString();
    }
}
