using System.Diagnostics;
using Sbp.Tensors;

namespace Sbp.GpuKit;

/// <summary>One phase of a kit run: "passed", "failed", "incomplete" (the budget ran out inside it) or "skipped", with why.</summary>
public sealed record PhaseResult(string Name, string Status, double Seconds, string? Detail);

/// <summary>
/// Runs the kit's phases in order under one time budget (--budget-s): a phase is skipped when less time is left than
/// it needs; one that hits a sticky CUDA error (<see cref="StickyError"/>) fails and every later phase is skipped,
/// since the context can run nothing more. The report is written after each phase, so a kill leaves what was done.
/// </summary>
public sealed class PhaseRunner
{
    readonly KitReport _report;
    readonly Device _device;
    readonly Stopwatch _clock;
    readonly Action _save;
    readonly Action<string> _log;
    string? _stop;
    string? _incomplete;

    /// <summary>Phases of <paramref name="report"/> on <paramref name="device"/>; <paramref name="save"/> writes the report.</summary>
    public PhaseRunner(KitReport report, Device device, double budgetSeconds, Stopwatch clock, Action save, Action<string> log)
    {
        _report = report;
        _device = device;
        BudgetSeconds = budgetSeconds;
        _clock = clock;
        _save = save;
        _log = log;
    }

    public double BudgetSeconds { get; }

    /// <summary>Seconds of the budget left (the clock started with the process).</summary>
    public double RemainingSeconds => BudgetSeconds - _clock.Elapsed.TotalSeconds;

    /// <summary>True when less than <paramref name="reserveSeconds"/> of the budget is left: a phase stops starting new work.</summary>
    public bool OutOfTime(double reserveSeconds) => RemainingSeconds < reserveSeconds;

    /// <summary>Marks the running phase incomplete: it stopped early for the budget (what ran is still judged).</summary>
    public void Incomplete(string why)
    {
        _incomplete = why;
        _log($"  stopped: {why}");
    }

    /// <summary>
    /// Runs <paramref name="body"/> as phase <paramref name="name"/> unless skipped; <paramref name="passed"/> judges what it recorded
    /// and <paramref name="summary"/> says it in one line (the phase's detail when it ran to its end).
    /// </summary>
    public void Run(string name, double estimateSeconds, Action body, Func<bool> passed, Func<string> summary)
    {
        if (_stop is not null)
        {
            Add(name, "skipped", 0, $"skipped: {_stop}");
            return;
        }
        if (RemainingSeconds < estimateSeconds)
        {
            Add(name, "skipped", 0, $"skipped: {Math.Max(0, RemainingSeconds):0.#} s of the {BudgetSeconds:0} s budget left; the phase needs about {estimateSeconds:0} s");
            return;
        }
        _incomplete = null;
        var watch = Stopwatch.StartNew();
        string status;
        string? detail;
        try
        {
            body();
            status = !passed() ? "failed" : _incomplete is null ? "passed" : "incomplete";
            detail = _incomplete is null ? summary() : $"{_incomplete}; {summary()}";
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            status = "failed";
            if (StickyError.Probe(e, _device) is { } sticky)
            {
                _stop = $"{StickyError.Describe(sticky)} in phase {name}";
                string where = ReferenceEquals(e, sticky) ? "" : $"{e.Message}: ";
                detail = $"{StickyError.Describe(sticky)}: {where}{sticky.Message} The context is unusable: the phases after this one are skipped.";
            }
            else
            {
                detail = $"{e.GetType().Name}: {e.Message}";
            }
            Console.Error.WriteLine($"sbp-gpu: phase {name}: {detail}");
            Console.Error.WriteLine(e.StackTrace);
        }
        Add(name, status, watch.Elapsed.TotalSeconds, detail);
    }

    void Add(string name, string status, double seconds, string? detail)
    {
        _report.Phases.Add(new PhaseResult(name, status, seconds, detail));
        _log($"phase {name}: {status}{(seconds > 0 ? $" in {seconds:0.0} s" : "")}{(detail is null ? "" : $" ({detail})")}");
        _save();
    }
}
