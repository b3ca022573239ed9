using System.Diagnostics;
using Sbp.OpCases;
using Sbp.Tensors;

namespace Sbp.GpuKit;

/// <summary>
/// The ops phase: every case of <see cref="OpTable"/>, then the large-shape cases of <see cref="LargeOps"/>, each on
/// the device against the CPU backend. A case that throws is a failed case and the next one runs, unless the error
/// is sticky (the context is gone): then it is rethrown and the phase ends there. The report is rewritten every few
/// seconds, so a process killed mid-phase leaves the cases it finished, and running-case.txt names the case it was in.
/// </summary>
public sealed class OpSuite(Device device, Device cpu, KitOptions options, KitReport report, PhaseRunner phases, Action save, Action<string> log)
{
    public void Run()
    {
        var table = OpTable.All.Where(c => options.Selects(c.Name)).ToList();
        var large = options.SkipLarge ? [] : LargeOps.Cases(full: !options.Simulate).Where(c => options.Selects(c.Name)).ToList();
        log($"ops: {table.Count} table cases and {large.Count} large-shape cases{(options.Simulate ? " (at the simulator's sizes)" : "")}, {device.Name} against the CPU backend");
        var cases = table.Select(c => (c.Name, Large: false, Compare: (Func<OpResult>)(() => OpComparison.Compare(c, device, cpu))))
            .Concat(large.Select(c => (c.Name, Large: true, Compare: (Func<OpResult>)(() => LargeOps.Compare(c, device, cpu)))))
            .ToList();
        if (options.AfterCase is { } after)
        {
            int at = cases.FindIndex(c => c.Name == after);
            if (at < 0) throw new ArgumentException($"--after-case: no op case is named '{after}'.");
            cases = cases[(at + 1)..];
            log($"ops: the {cases.Count} cases after '{after}'");
        }
        // Names the case a hang or a crash happened in (accept.sh goes on after it in a new process); gone when the loop ends.
        string running = Path.Combine(options.OutDir, "running-case.txt");
        try
        {
            RunCases(cases, running);
        }
        finally
        {
            File.Delete(running);
        }
        log($"ops: {report.Ops.Count(o => o.Passed)}/{report.Ops.Count} table cases and {report.LargeOps.Count(o => o.Passed)}/{report.LargeOps.Count} large-shape cases passed");
    }

    void RunCases(List<(string Name, bool Large, Func<OpResult> Compare)> cases, string running)
    {
        var sinceSave = Stopwatch.StartNew();
        double longest = 0;
        for (int i = 0; i < cases.Count; i++)
        {
            var (name, isLarge, compare) = cases[i];
            // A large case on a GPU takes seconds, mostly on the CPU: keep the longest case so far (and at least 10 s) in hand.
            if (phases.OutOfTime(isLarge && !options.Simulate ? Math.Max(10, 1.5 * longest) : 2))
            {
                phases.Incomplete($"the budget ran out after {i} of {cases.Count} cases");
                return;
            }
            File.WriteAllText(running, name + "\n");
            var watch = Stopwatch.StartNew();
            OpResult result;
            Exception? sticky = null;
            try
            {
                if (i == 0 && options.InjectSticky == "ops") throw StickyError.Injected("ops");
                result = compare();
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                result = new OpResult(name, false, double.NaN, double.NaN, null, $"{e.GetType().Name}: {e.Message}", double.NaN);
                sticky = StickyError.Probe(e, device);
            }
            (isLarge ? report.LargeOps : report.Ops).Add(result);
            longest = Math.Max(longest, watch.Elapsed.TotalSeconds);
            if (isLarge && sticky is null)
            {
                // Hundreds of MiB per case, in sizes the next case does not reuse: give them back.
                device.Pool.EmptyCache();
                cpu.Pool.EmptyCache();
            }
            log(Line(result, isLarge, watch.Elapsed.TotalSeconds));
            if (sticky is not null) throw new InvalidOperationException($"op case '{name}' failed with a sticky error", sticky);
            if (sinceSave.Elapsed.TotalSeconds >= 5)
            {
                save();
                sinceSave.Restart();
            }
        }
    }

    static string Line(OpResult r, bool large, double seconds)
    {
        string time = large && double.IsFinite(r.Ms) ? $", {r.Ms:0.###} ms on the device (events), {seconds:0.0} s in all" : "";
        return r.Passed
            ? $"  ok    {r.Name,-34} max |diff| {r.MaxAbsDiff:G3}{time}"
            : $"  FAIL  {r.Name,-34} {r.Error ?? r.Worst}";
    }
}
