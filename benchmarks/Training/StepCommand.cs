using System.Globalization;
using Sbp.Memory;

namespace Sbp.Benchmarks.Training;

/// <summary>`step MODEL BATCH FRAMES SIZE [MODE ...]`: one case in several modes, printed as a table (for choosing sizes).</summary>
public static class StepCommand
{
    public static int Run(string[] args)
    {
        if (args.Length < 4)
        {
            Console.Error.WriteLine("usage: step MODEL BATCH FRAMES SIZE [full checkpoint sbp-0.5 sbp-rc-0.25 sbp-all-0.25 sbp+checkpoint-0.25 ...] [--steps N] [--limit-mib M] [--rounds R]");
            return 2;
        }
        var inv = CultureInfo.InvariantCulture;
        int steps = 2;
        long? limit = null;
        int rounds = 0;
        var rest = new List<string>();
        for (int i = 4; i < args.Length; i++)
            if (args[i] == "--steps" && i + 1 < args.Length) steps = int.Parse(args[++i], inv);
            else if (args[i] == "--limit-mib" && i + 1 < args.Length) limit = (long)(double.Parse(args[++i], inv) * 1048576);
            else if (args[i] == "--rounds" && i + 1 < args.Length)
            {
                if (!int.TryParse(args[++i], NumberStyles.None, inv, out rounds) || rounds < 1)
                {
                    Console.Error.WriteLine($"step: --rounds '{args[i]}' is not a whole number of rounds >= 1 (e.g. --rounds 10).");
                    return 2;
                }
            }
            else rest.Add(args[i]);
        var c = new StepCase(args[0], int.Parse(args[1], inv), int.Parse(args[2], inv), int.Parse(args[3], inv));
        var modes = rest.Count == 0 ? StepMode.All : rest.Select(StepMode.Parse).ToList();
        Console.WriteLine($"{c}");
        if (rounds > 0) return Interleaved(c, modes, rounds);
        StepResult? full = null;
        foreach (var m in modes)
        {
            StepResult r;
            try
            {
                r = StepBench.Measure(c, m, 1, steps, limit);
            }
            catch (DeviceOutOfMemoryException e)
            {
                // Under --limit-mib the message names what is live (by category and op) when the step does not fit.
                Console.WriteLine($"{m.Name,-14} out of memory: {e.Message}");
                continue;
            }
            if (m.Mode == Models.Training.TrainMode.Full) full = r;
            string work = m.RegionsTaped
                ? string.Create(inv, $"  {2.0 * r.Cost.Macs / 1e9:F1} GFLOP at {r.GigaflopsPerSecond:F0} GFLOP/s") +
                  (full is null || ReferenceEquals(full, r) ? "" : string.Create(inv, $", vs full {r.StepMs / full.StepMs:F2} (ideal {(double)r.Cost.Macs / full.Cost.Macs:F2})"))
                : "";
            Console.WriteLine($"{m.Name,-14} step {r.StepMs,8:F0} ms (fwd {r.ForwardMs:F0}, bwd {r.BackwardMs:F0}, opt {r.OptimizerMs:F0}; {r.TapeNodes} nodes){work}  peak {MemoryPool.FormatBytes(r.PeakBytes),10}  saved {MemoryPool.FormatBytes(r.SavedActivationBytes),10} ({r.SavedShareOfPeak:P0} of peak)  params {MemoryPool.FormatBytes(r.ParamBytes)}  loss {r.Loss:F4}");
        }
        return 0;
    }

    /// <summary>
    /// --rounds R: one step of every mode per round (<see cref="InterleavedTiming"/>), each mode's best step, and its
    /// ratio to the first mode's: the way to compare modes on a shared machine, where load shifts between runs.
    /// </summary>
    static int Interleaved(StepCase c, IReadOnlyList<StepMode> modes, int rounds)
    {
        var inv = CultureInfo.InvariantCulture;
        var results = InterleavedTiming.Run(c, modes, rounds);
        var first = results[0];
        Console.WriteLine($"{rounds} interleaved rounds after 1 warm-up step; best step of each mode and its ratio to {first.Mode}'s best; paired: the median over rounds of the ratio within a round");
        foreach (var r in results)
            Console.WriteLine(string.Create(inv,
                $"{r.Mode,-16} step {r.BestMs,8:F0} ms (fwd {r.ForwardMs:F0}, bwd {r.BackwardMs:F0}, opt {r.OptimizerMs:F0})  {r.BestMs / first.BestMs:F3}x  paired {r.PairedRatio(first):F3}x  ") +
                $"peak {MemoryPool.FormatBytes(r.PeakBytes),10}  saved {MemoryPool.FormatBytes(r.SavedBytes),10}");
        return 0;
    }
}
