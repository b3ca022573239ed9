using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using Sbp.Benchmarks.Training;
using Sbp.Stochastic;
using Sbp.Tensors;

namespace Sbp.Benchmarks.Suites;

/// <summary>Short in-process job (the engine's memory columns read what the setup recorded in this process) and the memory columns.</summary>
public sealed class TrainingStepConfig : ManualConfig
{
    public TrainingStepConfig()
    {
        AddJob(Job.Dry.WithToolchain(InProcessEmitToolchain.Instance).WithWarmupCount(1).WithIterationCount(3)
            .WithInvocationCount(1).WithUnrollFactor(1).WithLaunchCount(1).WithId("short-inproc"));
        AddColumn(EngineMemoryColumn.All);
        WithOptions(ConfigOptions.DisableOptimizationsValidator);
    }
}

/// <summary>
/// One training step (forward, cross-entropy, backward, AdamW) per model x mode x backend. Sizes
/// are reduced so a step takes well under a second or two on a CPU: swin-micro 16x64x64, a
/// Swin-T-shaped Video Swin at 16x112x112 (batch 1), vit-micro 16x64x64, the per-frame detector over 128 frames (its "sbp-0.25" row runs keep 0.2, a strided mask of stride 5).
/// CUDA rows run only where Device.Resolve("cuda") works.
/// `dotnet run -c Release --project benchmarks -- --filter '*TrainingStep*'`
/// </summary>
[Config(typeof(TrainingStepConfig))]
public class TrainingStepBenchmarks
{
    static readonly Dictionary<string, StepCase> Cases = new()
    {
        ["swin-micro"] = new StepCase("swin-micro", 4, 16, 64),
        ["swin-t-112"] = new StepCase("swin-t", 1, 16, 112),
        ["vit-micro"] = new StepCase("vit-micro", 4, 16, 64),
        ["det-micro"] = new StepCase("det-micro", 1, 128, 64),
    };

    TrainingSession? _session;

    [Params("swin-micro", "swin-t-112", "vit-micro", "det-micro")]
    public string Model { get; set; } = "swin-micro";

    [Params("full", "checkpoint", "sbp-0.5", "sbp-0.25", "sbp-rc-0.25")]
    public string Mode { get; set; } = "full";

    [ParamsSource(nameof(Backends))]
    public string Backend { get; set; } = "cpu";

    /// <summary>cpu, and cuda when a CUDA device resolves on this machine.</summary>
    public static IEnumerable<string> Backends()
    {
        yield return "cpu";
        Device? cuda = null;
        try { cuda = Device.Resolve("cuda"); }
        catch (Sbp.Backends.Cuda.CudaUnavailableException) { }
        if (cuda is not null) yield return "cuda";
    }

    [GlobalSetup]
    public void Setup()
    {
        var mode = Training.StepMode.Parse(Mode);
        var c = Cases[Model];
        if (Model == "det-micro" && mode.Keep == 0.25) mode = mode with { Keep = 0.2 };   // the detector's strided keep 0.2 (stride 5)
        _session = new TrainingSession(c, mode, Backend == "cpu" ? null : Device.Resolve(Backend));
        _session.Step();                       // AdamW's state exists from here on
        _session.Device.Pool.ResetPeak();
        _session.Step();
        EngineMemory.ByCase[EngineMemory.Key(Model, Mode, Backend)] = (_session.Device.Pool.PeakInUseBytes, _session.SavedBytes);
    }

    [Benchmark]
    public double Step() => _session!.Step();

    [GlobalCleanup]
    public void Cleanup() => _session?.Dispose();
}
