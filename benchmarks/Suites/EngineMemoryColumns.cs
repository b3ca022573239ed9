using System.Collections.Concurrent;
using System.Globalization;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace Sbp.Benchmarks.Suites;

/// <summary>
/// Engine memory recorded by the benchmarks' setup (in process), keyed by the benchmark's
/// parameters: the pool's peak and the tape's saved-activation bytes of a training step.
/// </summary>
public static class EngineMemory
{
    public static ConcurrentDictionary<string, (long Peak, long Saved)> ByCase { get; } = new();

    public static string Key(string model, string mode, string backend) => $"{model}|{mode}|{backend}";
}

/// <summary>
/// BenchmarkDotNet columns for the training-step suite: peak bytes, saved-activation bytes, and
/// against the same model's full-backprop case: memory saving % (peak) and speedup % (median time).
/// </summary>
public sealed class EngineMemoryColumn(string id, string header, Func<Summary, BenchmarkCase, string> value) : IColumn
{
    public string Id => id;
    public string ColumnName => header;
    public bool AlwaysShow => true;
    public ColumnCategory Category => ColumnCategory.Custom;
    public int PriorityInCategory => 0;
    public bool IsNumeric => true;
    public UnitType UnitType => UnitType.Dimensionless;
    public string Legend => header;
    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
    public bool IsAvailable(Summary summary) => true;
    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => value(summary, benchmarkCase);
    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style) => value(summary, benchmarkCase);

    static string P(BenchmarkCase c, string name) => c.Parameters[name]?.ToString() ?? "";

    static (long Peak, long Saved)? Memory(BenchmarkCase c, string? mode = null) =>
        EngineMemory.ByCase.TryGetValue(EngineMemory.Key(P(c, "Model"), mode ?? P(c, "Mode"), P(c, "Backend")), out var m) ? m : null;

    static BenchmarkCase? FullOf(Summary s, BenchmarkCase c) => s.BenchmarksCases.FirstOrDefault(o =>
        P(o, "Model") == P(c, "Model") && P(o, "Backend") == P(c, "Backend") && P(o, "Mode") == "full");

    static string Mib(long b) => (b / 1048576.0).ToString("F1", CultureInfo.InvariantCulture);

    /// <summary>The four columns.</summary>
    public static IColumn[] All { get; } =
    [
        new EngineMemoryColumn("PeakMiB", "Peak MiB", (s, c) => Memory(c) is { } m ? Mib(m.Peak) : "?"),
        new EngineMemoryColumn("SavedMiB", "Saved MiB", (s, c) => Memory(c) is { } m ? Mib(m.Saved) : "?"),
        new EngineMemoryColumn("Saving", "Peak saving %", (s, c) =>
            Memory(c) is { } m && Memory(c, "full") is { } f && f.Peak > 0 ? (100.0 * (1 - (double)m.Peak / f.Peak)).ToString("F1", CultureInfo.InvariantCulture) : "?"),
        new EngineMemoryColumn("Speedup", "Speedup %", (s, c) =>
        {
            var full = FullOf(s, c);
            double? a = s[c]?.ResultStatistics?.Median, b = full is null ? null : s[full]?.ResultStatistics?.Median;
            return a is > 0 && b is > 0 ? (100.0 * (b.Value / a.Value - 1)).ToString("F1", CultureInfo.InvariantCulture) : "?";
        }),
    ];
}
