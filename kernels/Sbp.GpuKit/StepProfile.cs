using System.Globalization;
using Sbp.Autograd;
using Sbp.Backends.Cuda;
using Sbp.Models.Architectures;
using Sbp.Optim;
using Sbp.Rng;
using Sbp.Tensors;

namespace Sbp.GpuKit;

/// <summary>What the profile phase runs: one full-backprop training step of <see cref="Model"/> on a clip of Frames x Size x Size.</summary>
public sealed record ProfileOptions(string Model, int Batch, int Frames, int Size, string? ModeledFile = null)
{
    /// <summary>"swin-t 8 16 224": what a modeled-times file must declare on its "config" line to apply.</summary>
    public string Config => string.Create(CultureInfo.InvariantCulture, $"{Model} {Batch} {Frames} {Size}");
}

/// <summary>
/// One row of the per-op table: an op in one phase ("forward", "backward"; "optimizer" for gradient clipping and AdamW),
/// its calls, measured milliseconds and share of the step, and the time a performance model predicts for it (null: none given).
/// </summary>
public sealed record ProfileRow(string Op, string Phase, int Calls, double Ms, double Share, double? ModeledMs);

/// <summary>
/// The profile phase's result. <see cref="ForwardMs"/>, <see cref="BackwardMs"/>, <see cref="OptimizerMs"/>: device time of
/// each phase of one step between two CUDA events. <see cref="Rows"/>: the engine's op profiler (<see cref="OpProfile"/>)
/// over a second step; <see cref="Timing"/> says what its times are (GPU time only when launches were synchronous).
/// <see cref="Modeled"/>: predicted milliseconds per <see cref="StepProfile.Key"/> and per phase name, and where they came from.
/// </summary>
public sealed record StepProfileResult(ProfileOptions Options, string Timing, double ForwardMs, double BackwardMs, double OptimizerMs,
    IReadOnlyList<ProfileRow> Rows, IReadOnlyDictionary<string, double>? Modeled = null, string? ModelNote = null)
{
    /// <summary>The same result with the "modeled ms" column (and the phase predictions) from <paramref name="modeled"/>.</summary>
    public StepProfileResult WithModeled(IReadOnlyDictionary<string, double> modeled, string note) =>
        this with
        {
            Rows = [.. Rows.Select(r => r with { ModeledMs = modeled.TryGetValue(StepProfile.Key(r.Op, r.Phase), out double m) ? m : null })],
            Modeled = modeled,
            ModelNote = note,
        };

    /// <summary>The predicted milliseconds of a phase ("forward", "backward", "optimizer"), if a model gave one.</summary>
    public double? ModeledPhase(string phase) => Modeled is not null && Modeled.TryGetValue(phase, out double m) ? m : null;
}

/// <summary>
/// Per-op time of one training step, to check the H100 performance model (`sbp kernels model`) against. The step is the
/// model's: forward with cross-entropy, backward, then gradient clipping and AdamW ("optimizer"). Each phase is timed with
/// two CUDA events. The op profiler reads the host clock at each op boundary: with CUDA_LAUNCH_BLOCKING=1 every launch
/// waits for its kernel, so an op's time is its GPU time plus launch costs (accept.sh runs this phase so); without,
/// it is the launch time only, and the report says so.
/// </summary>
public static class StepProfile
{
    /// <summary>The key of an op in the dictionary of modeled times: "op/phase", e.g. "matmul/backward" or "adamw.step/optimizer".</summary>
    public static string Key(string op, string phase) => $"{op}/{phase}";

    /// <summary>Profiles one step of <paramref name="o"/> on <paramref name="device"/>; <paramref name="modeled"/>: milliseconds per
    /// <see cref="Key"/> or phase name, for the "modeled ms" column and the phase totals (null: read o.ModeledFile, if any).</summary>
    public static StepProfileResult Run(Device device, ProfileOptions o, bool simulated, Action<string> log, IReadOnlyDictionary<string, double>? modeled = null)
    {
        using var model = ModelFactory.Create(o.Model, new RandomSource(1), device, frames: o.Frames, height: o.Size, width: o.Size);
        using var optimizer = new AdamW(model.NamedParameters(), learningRate: 1e-3f, weightDecay: 0.05f);
        var (input, target) = RandomBatch.For(model, o.Batch, device);
        using var inputs = input;
        using var targets = target;
        model.Train();
        var cuda = device.Backend as CudaBackend;
        double Timed(Action work)
        {
            if (cuda is not null) return cuda.TimeMilliseconds(work);
            work();
            return double.NaN;
        }
        (double Forward, double Backward, double Optimizer) Step(OpProfile? profile)
        {
            model.ZeroGrad();
            double forward, backward;
            using (var scope = TensorScope.Begin())
            using (var tape = Tape.Begin())
            {
                if (profile is not null)
                {
                    tape.Profile = profile;
                    profile.Start();
                }
                Tensor loss = null!;
                forward = Timed(() => loss = Ops.CrossEntropy(model.Forward(input, null, 0), target));
                backward = Timed(() => tape.Backward(loss));
            }
            double step = Timed(() =>
            {
                using (GradClip.Clip(model.NamedParameters(), 1f)) { }
                optimizer.Step();
            });
            return (forward, backward, step);
        }

        Step(null);   // warm-up: modules, cuBLAS / cuDNN plans, the pool's blocks, AdamW's state
        var (forwardMs, backwardMs, optimizerMs) = Step(null);
        var profile = new OpProfile();
        Step(profile);
        cuda?.Synchronize();
        model.ZeroGrad();
        device.Pool.EmptyCache();

        var measured = profile.Rows()
            .GroupBy(row => (Op: row.Internal ? "engine: " + row.Op : row.Op, Phase: row.Phase == OpProfile.Phase.Forward ? "forward" : "backward"))
            .Select(g => (g.Key.Op, g.Key.Phase, Calls: g.Sum(row => row.Calls), Ms: g.Sum(row => row.Milliseconds)))
            .Append((Op: "clip + adamw.step", Phase: "optimizer", Calls: 1, Ms: optimizerMs))
            .Where(row => double.IsFinite(row.Ms))
            .OrderByDescending(row => row.Ms)
            .ToList();
        double total = measured.Sum(row => row.Ms);
        var rows = measured.Select(row => new ProfileRow(row.Op, row.Phase, row.Calls, row.Ms, total > 0 ? row.Ms / total : 0, null)).ToList();
        var result = new StepProfileResult(o, Timing(simulated), forwardMs, backwardMs, optimizerMs, rows);
        if (modeled is not null) result = result.WithModeled(modeled, "given by the caller");
        else if (o.ModeledFile is { } file) result = ReadModeled(result, file);
        log($"  CUDA events: forward {forwardMs:0.00} ms, backward {backwardMs:0.00} ms, clip + AdamW {optimizerMs:0.00} ms; {rows.Count} op rows summing to {total:0.0} ms ({result.Timing})");
        foreach (var phase in new[] { "forward", "backward", "optimizer" })
            if (result.ModeledPhase(phase) is { } m) log($"  modeled {phase}: {m:0.00} ms ({result.ModelNote})");
        if (result.ModelNote is { } note && result.Modeled is null) log($"  modeled times: {note}");
        foreach (var row in rows.Take(12)) log($"  {row.Op,-28} {row.Phase,-9} {row.Calls,5} x {row.Ms,9:0.00} ms {row.Share,6:P1}");
        return result;
    }

    /// <summary>
    /// The predictions of a modeled-times file: '#' comments, a "config MODEL BATCH FRAMES SIZE" line, then "KEY MS" lines
    /// (KEY: a phase name or a <see cref="Key"/>). Applied only when the config is the profiled one; the note says why not otherwise.
    /// </summary>
    public static StepProfileResult ReadModeled(StepProfileResult result, string path)
    {
        var values = new Dictionary<string, double>(StringComparer.Ordinal);
        string? config = null;
        foreach (var raw in File.ReadLines(path))
        {
            string line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#')) continue;
            int split = line.LastIndexOfAny([' ', '\t']);
            if (line.StartsWith("config", StringComparison.Ordinal))
                config = string.Join(' ', line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries).Skip(1));
            else if (split > 0 && double.TryParse(line[(split + 1)..], NumberStyles.Float, CultureInfo.InvariantCulture, out double ms))
                values[line[..split].Trim()] = ms;
            else
                throw new InvalidDataException($"{path}: '{raw}' is neither 'config MODEL BATCH FRAMES SIZE' nor 'KEY MILLISECONDS'.");
        }
        string name = Path.GetFileName(path);
        return config == result.Options.Config
            ? result.WithModeled(values, name)
            : result with { ModelNote = $"{name} is for '{config ?? "no config line"}', not '{result.Options.Config}': not applied" };
    }

    static string Timing(bool simulated) =>
        simulated ? "simulated device: the simulator's host time, not GPU time"
        : Environment.GetEnvironmentVariable("CUDA_LAUNCH_BLOCKING") == "1" ? "synchronous launches (CUDA_LAUNCH_BLOCKING=1): GPU time plus launch costs per op"
        : "asynchronous launches: op times are launch (host) times; set CUDA_LAUNCH_BLOCKING=1 for GPU time per op (accept.sh does)";
}
