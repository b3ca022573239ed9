using Sbp.Tensors;

namespace Sbp.OpCases;

/// <summary>One op case on a device against the CPU: the worst element, or the error it threw.</summary>
public sealed record OpResult(string Name, bool Passed, double MaxAbsDiff, double MaxRelDiff, string? Worst, string? Error, double Ms);

/// <summary>Runs <see cref="OpTable"/> cases on a device and on the CPU and compares every result element by element.</summary>
public static class OpComparison
{
    /// <summary>Runs every case (or those whose name contains <paramref name="filter"/>) on <paramref name="device"/> and on <paramref name="cpu"/>.</summary>
    public static List<OpResult> Run(Device device, Device cpu, string? filter, Action<string> log)
    {
        var results = new List<OpResult>();
        foreach (var op in OpTable.All)
        {
            if (filter is not null && !op.Name.Contains(filter, StringComparison.OrdinalIgnoreCase)) continue;
            var watch = System.Diagnostics.Stopwatch.StartNew();
            OpResult result;
            try
            {
                result = Compare(op, device, cpu);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                result = new OpResult(op.Name, false, double.NaN, double.NaN, null, $"{e.GetType().Name}: {e.Message}", watch.Elapsed.TotalMilliseconds);
            }
            results.Add(result);
            log(result.Passed
                ? $"  ok    {op.Name,-34} max |diff| {result.MaxAbsDiff:G3}"
                : $"  FAIL  {op.Name,-34} {result.Error ?? result.Worst}");
        }
        return results;
    }

    /// <summary>Runs <paramref name="op"/> on <paramref name="cpu"/> and on <paramref name="device"/> and compares the results.</summary>
    public static OpResult Compare(OpCase op, Device device, Device cpu)
    {
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var expected = op.Run(cpu);
        return Compare(op, expected, op.Run(device), watch.Elapsed.TotalMilliseconds);
    }

    /// <summary>Every result element of <paramref name="actual"/> (a device) against <paramref name="expected"/> (the CPU) within the case's tolerance.</summary>
    public static OpResult Compare(OpCase op, IReadOnlyList<(string What, float[] Values)> expected, IReadOnlyList<(string What, float[] Values)> actual, double ms)
    {
        if (expected.Count != actual.Count)
            return new OpResult(op.Name, false, double.NaN, double.NaN, null, $"{actual.Count} results on the device vs {expected.Count} on the CPU", ms);
        double maxAbs = 0, maxRel = 0;
        string? worst = null;
        bool passed = true;
        double worstExcess = 0;
        for (int k = 0; k < expected.Count; k++)
        {
            var (what, e) = expected[k];
            var a = actual[k].Values;
            if (a.Length != e.Length)
                return new OpResult(op.Name, false, double.NaN, double.NaN, null, $"{what}: {a.Length} values on the device vs {e.Length} on the CPU", ms);
            for (int i = 0; i < e.Length; i++)
            {
                double diff = Math.Abs((double)a[i] - e[i]);
                if (double.IsNaN(diff)) diff = double.PositiveInfinity;
                maxAbs = Math.Max(maxAbs, diff);
                if (e[i] != 0) maxRel = Math.Max(maxRel, diff / Math.Abs(e[i]));
                double excess = diff - (op.Atol + op.Rtol * Math.Abs(e[i]));
                if (excess > 0 && (passed || excess > worstExcess))
                {
                    passed = false;
                    worstExcess = excess;
                    worst = $"{what}[{i}] = {a[i]:G9} on the device, {e[i]:G9} on the CPU (rtol {op.Rtol}, atol {op.Atol})";
                }
            }
        }
        return new OpResult(op.Name, passed, maxAbs, maxRel, worst, null, ms);
    }
}
