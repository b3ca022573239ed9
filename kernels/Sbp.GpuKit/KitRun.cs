using System.Diagnostics;
using Sbp.Backends.Cuda;
using Sbp.Memory;
using Sbp.OpCases;
using Sbp.Stochastic;
using Sbp.Tensors;

namespace Sbp.GpuKit;

/// <summary>
/// The phases of one gpu-check run on a device that is ready (Program.cs found it), each through
/// <see cref="PhaseRunner"/>: the budget, the stop after a sticky error, and the report rewritten after each.
/// </summary>
public sealed class KitRun
{
    readonly KitOptions _options;
    readonly Device _device;
    readonly Device _cpu;
    readonly KitReport _report;
    readonly LibraryPlanInfo _plan;
    readonly Stopwatch _clock;
    readonly Action<string> _log;
    readonly PhaseRunner _phases;

    public KitRun(KitOptions options, Device device, Device cpu, KitReport report, LibraryPlanInfo plan, Stopwatch clock, Action<string> log)
    {
        _options = options;
        _device = device;
        _cpu = cpu;
        _report = report;
        _plan = plan;
        _clock = clock;
        _log = log;
        _phases = new PhaseRunner(report, device, options.BudgetSeconds, clock, Save, log);
    }

    /// <summary>Runs the phases asked for; returns the exit code (0 passed, 1 failed, 3 incomplete).</summary>
    public int Run()
    {
        if (_options.CudnnFirst) _phases.Run("cudnn-first", Estimate(2), CudnnFirst, () => _report.Ops.All(o => o.Passed), CudnnFirstSummary);
        foreach (var phase in _options.Phases)
        {
            switch (phase)
            {
                case "ops":
                    _phases.Run(phase, Estimate(_options.Cases.Count > 0 ? 5 : 20), new OpSuite(_device, _cpu, _options, _report, _phases, Save, _log).Run, () => !_report.FailedOps.Any(),
                        () => $"{Cases(_report.Ops, "table case")}, {Cases(_report.LargeOps, "large-shape case")}");
                    break;
                case "train":
                    _phases.Run(phase, Estimate(20), Injecting(phase, Train), () => _report.TrainSteps.All(t => t.Passed),
                        () => $"{_report.TrainSteps.Count(t => t.Passed)}/{_report.TrainSteps.Count} training steps ({_options.TrainModel}) agree with the CPU");
                    break;
                case "nccl":
                    _phases.Run(phase, Estimate(5), Injecting(phase, () => _report.Nccl = NcclCheck.Run(_device, _options.Simulate, _log)),
                        () => _report.Nccl?.Passed ?? true, () => _report.Nccl is { } n ? $"{n.Status}: {n.Detail}" : "not run");
                    break;
                case "bench":
                    _phases.Run(phase, Estimate(40), Injecting(phase, Bench), () => _report.BenchRows.All(r => r.Error is null), BenchSummary);
                    break;
                case "profile":
                    _phases.Run(phase, Estimate(15), Injecting(phase, Profile), () => true, ProfileSummary);
                    break;
            }
        }
        int code = _report.ExitCode;
        _report.Status = code switch { 0 => "ok", 3 => "incomplete", _ => "failed" };
        _report.Message = code switch
        {
            0 => null,
            3 => "what ran passed, but some phases were skipped or stopped early; see the phases",
            _ => "some checks failed; see the phases and the tables",
        };
        Save();
        if (_report.Device is { } d)
        {
            _log(d.Libraries.Count == 0 ? "libraries: none of libcuda / cuBLAS / cuDNN / NCCL is loaded in this process" : "libraries loaded:");
            foreach (var l in d.Libraries) _log($"  {l.Library} {l.Version} in {l.Folder} ({Path.GetFileName(l.Path)})");
        }
        return code;
    }

    string CudnnFirstSummary() =>
        $"a conv3d as the first library call: {(_report.Ops.All(o => o.Passed) ? "ok" : "FAILED")}; loaded then: " +
        (_report.Device is { Libraries.Count: > 0 } d ? string.Join(", ", d.Libraries.Select(l => $"{l.Library} {l.Version}")) : "no NVIDIA library");

    string BenchSummary() => string.Join(", ", _report.BenchRows.Select(r =>
        r.Error is null ? $"{r.Mode} {r.MeanStepMs:0.0} ms / {r.PeakBytes / 1048576.0:0.0} MiB peak" : $"{r.Mode} failed"));

    string ProfileSummary()
    {
        if (_report.Profile is not { } p) return "no profile";
        string Modeled(string phase) => p.ModeledPhase(phase) is { } m ? $" (modeled {m:0.0})" : "";
        return $"{p.Options.Model} b{p.Options.Batch}: forward {p.ForwardMs:0.0} ms{Modeled("forward")}, backward {p.BackwardMs:0.0} ms{Modeled("backward")}, " +
            $"clip + AdamW {p.OptimizerMs:0.0} ms{Modeled("optimizer")} (CUDA events); {p.Rows.Count} op rows in report.md";
    }

    /// <summary>"n/m &lt;what&gt;s passed", and the failed ones' names.</summary>
    static string Cases(List<OpResult> results, string what)
    {
        var failed = results.Where(r => !r.Passed).Select(r => r.Name).ToList();
        return $"{results.Count - failed.Count}/{results.Count} {what}s passed{(failed.Count > 0 ? $" (failed: {string.Join("; ", failed.Take(5))}{(failed.Count > 5 ? "; ..." : "")})" : "")}";
    }

    /// <summary>The phase's body, failing first with an injected sticky error under --inject-sticky (the ops phase injects it in its first case).</summary>
    Action Injecting(string phase, Action body) => () =>
    {
        if (_options.InjectSticky == phase) throw StickyError.Injected(phase);
        body();
    };

    /// <summary>A phase's estimate on a GPU; on the simulator everything is sized to take about a second.</summary>
    double Estimate(double gpuSeconds) => _options.Simulate ? 1 : gpuSeconds;

    /// <summary>Refreshes the device's description (the libraries loaded so far) and rewrites the report files.</summary>
    public void Save()
    {
        _report.TotalSeconds = _clock.Elapsed.TotalSeconds;
        if (_device.Backend is CudaBackend) _report.Device = DeviceReport.Describe(_device, _plan, _report.Device);
        try
        {
            _report.Write(_options.OutDir);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"sbp-gpu: could not write the report to {_options.OutDir}: {e.Message}");
        }
    }

    /// <summary>
    /// A convolution forward and backward as the process's first cuBLAS / cuDNN use (cuDNN 9 opens cuBLAS by name:
    /// the engine must have loaded the right one first), compared with the CPU; then the libraries the process holds.
    /// </summary>
    void CudnnFirst()
    {
        var conv = OpTable.All.First(c => c.Name == "conv3d (patch embed)");
        var result = OpComparison.Compare(conv, _device, _cpu) with { Name = "conv3d (patch embed) as the first library call" };
        _report.Ops.Add(result);
        _log(result.Passed ? $"cudnn-first: ok: {result.Name}, max |diff| {result.MaxAbsDiff:G3}" : $"cudnn-first: FAIL: {result.Error ?? result.Worst}");
        Save();
        foreach (var l in _report.Device?.Libraries ?? []) _log($"  loaded after it: {l.Library} {l.Version} in {l.Folder}");
    }

    void Train()
    {
        _log($"train step: {_options.TrainModel}, batch {_options.TrainBatch}, strided keep 0.5, {_device.Name} against the CPU");
        double last = 0;
        foreach (var (mode, precision) in new[] { (RegionMode.SparseCache, DType.Float32), (RegionMode.Recompute, DType.Float32), (RegionMode.SparseCache, DType.BFloat16) })
        {
            if (_report.TrainSteps.Count > 0 && _phases.OutOfTime(Math.Max(Estimate(10), 1.2 * last)))
            {
                _phases.Incomplete($"the budget ran out before the {mode} step");
                return;
            }
            var watch = Stopwatch.StartNew();
            var t = TrainStepCheck.Run(_device, _cpu, _options.TrainModel, _options.TrainBatch, mode, precision);
            last = watch.Elapsed.TotalSeconds;
            _report.TrainSteps.Add(t);
            _log(t.Passed
                ? $"  ok    {t.Mode}: loss {t.CpuLoss:G6} (CPU) / {t.DeviceLoss:G6}, max grad diff {t.MaxGradDiff:G3}, max weight diff {t.MaxWeightDiff:G3}, {t.Regions} regions, {t.DeviceMs:0} ms"
                : $"  FAIL  {t.Mode}: {t.Error ?? t.WorstGrad ?? t.WorstWeight ?? $"loss {t.CpuLoss} (CPU) vs {t.DeviceLoss}"}");
            Save();
        }
    }

    void Bench()
    {
        var b = _options.Bench;
        _report.Bench = b;
        _log($"benchmark: {b.Model}, batch {(b.Batch == 0 ? "auto" : b.Batch)}, {b.Frames} x {b.Size} x {b.Size}, {b.Warmup} warm-up + {b.Steps} timed steps{(b.Tf32 ? ", TF32" : "")}");
        var used = Benchmark.Run(_device, b, _log, last => _phases.OutOfTime(Math.Max(Estimate(15), 1.2 * last)), row =>
        {
            _report.BenchRows.Add(row);
            Save();
        });
        _report.Bench = used;
        if (_report.BenchRows.Count < b.RowCount)
            _phases.Incomplete($"the budget ran out after {_report.BenchRows.Count} of {b.RowCount} rows");
    }

    void Profile()
    {
        var p = _options.Profile;
        _log($"profile: {p.Model}, batch {p.Batch}, {p.Frames} x {p.Size} x {p.Size}, one full-backprop step");
        try
        {
            _report.Profile = StepProfile.Run(_device, p, _options.Simulate, _log);
        }
        catch (DeviceOutOfMemoryException e) when (p.Batch > 1)
        {
            // A smaller step still gives the per-op times (the modeled ones, for the larger batch, then do not apply).
            _log($"  out of device memory at batch {p.Batch}: batch 1 instead ({e.Message})");
            _device.Pool.EmptyCache();
            _report.Profile = StepProfile.Run(_device, p with { Batch = 1 }, _options.Simulate, _log);
        }
    }
}
