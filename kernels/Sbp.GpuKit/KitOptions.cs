using System.Globalization;

namespace Sbp.GpuKit;

/// <summary>The kit's command line (hand-parsed: a handful of options, no reflection).</summary>
public sealed class KitOptions
{
    public const string Usage = """
        usage: sbp-gpu [gpu-check] [options]
          gpu-check (the default): prints the device, the driver and the cuBLAS / cuDNN the engine found (versions and
          folders), then runs the phases in order:
            ops      every backend op on CUDA against the CPU backend (the op table), then large shapes (softmax 10000x1000,
                     layer norm 20000x768 and at the 6112-column limit, column sum 200000x96, a 50M-element sum, a 6-D permute,
                     gather / scatter of 1M rows, the 16x224x224 patch embedding), each timed with CUDA events
            train    a full SBP training step on both devices (loss, every gradient, every updated weight)
            nccl     a size-1 NCCL all-reduce and broadcast when libnccl.so.2 is found ("not found" is no failure)
            bench    step time and peak memory, full backprop vs SBP (the pool's cache emptied between rows)
            profile  one Swin-T batch-8 training step: forward, backward, clip + AdamW by CUDA events (next to --modeled
                     times), then ms and share per op (GPU time when CUDA_LAUNCH_BLOCKING=1, else launch time)
          report.json, report.md, phases.txt and failed-cases.txt are rewritten after each phase (a kill keeps what was done).
          After a sticky CUDA error (700 illegal address, 719 launch failed, ...) the context is unusable: the phases
          after it are skipped and say so.
        options:
          --out DIR            where the report goes (default: $OUT, else ./sbp-gpu-out)
          --device cuda:N      the GPU (default cuda:0)
          --simulate           run on the simulated CUDA device (no GPU needed; tiny shapes)
          --phase LIST         only these phases, comma-separated (ops,train,nccl,bench,profile); default all
          --skip-ops | --skip-train | --skip-nccl | --skip-bench | --skip-profile
          --budget-s S         time budget of the whole run in seconds (default 420): a phase that would not fit is skipped,
                               the op cases, training steps and benchmark rows stop when it runs out
          --ops FILTER         only the op cases whose name contains FILTER
          --case NAME          only the op case named exactly NAME (repeatable; failed-cases.txt lists such names)
          --after-case NAME    only the op cases after NAME (to go on after a sticky error, a hang or a crash in NAME;
                               running-case.txt in --out names the case being run)
          --no-large           ops without the large-shape cases
          --cudnn-first        before the phases, a convolution on the device is the process's first cuBLAS / cuDNN use
          --train-model NAME   model of the training-step check (default swin-micro; simulated: swin-nano)
          --train-batch N      (default 2; simulated: 1)
          --bench-model NAME   (default swin-t)    --bench-batch N|auto (default auto: ~1.5 s per full-backprop step, at most 16; simulated: 1)
          --bench-frames N     (default 16)        --bench-size N (default 224)   (also the profile's clip)
          --bench-target-ms T  step time the automatic batch aims at (default 1500)
          --bench-warmup N     (default 1)         --bench-steps N (default 3)
          --keep LIST          SBP keep ratios to benchmark (default 0.5,0.25; simulated: 0.5)
          --precision LIST     autocast types of the benchmark rows, each with full backprop and every keep ratio: fp32, bf16,
                               fp16 (default fp32,bf16)
          --profile-model NAME (default swin-t; simulated: swin-nano)   --profile-batch N (default 8; simulated: 1)
          --modeled FILE       modeled times for the profile (`config MODEL BATCH FRAMES SIZE`, then `forward|backward|optimizer|op/phase MS`
                               lines), shown next to the measured ones when the config is the profiled one
          --tf32               allow TF32 tensor cores in cuBLAS / cuDNN (default FP32; the op tolerances assume FP32)
          --inject-sticky PHASE  fail PHASE with an injected CUDA error 700 (tests the skipping; no GPU work is harmed)
          --version            print the kit's version
        exit codes: 0 passed, 1 a check failed, 2 no usable GPU (the message says driver missing or no device),
        3 incomplete (the budget ran out; what ran passed), 64 bad arguments.
        One phase per process, each under a timeout, with an environment record and SUMMARY.txt: accept.sh next to this program.
        """;

    /// <summary>The phases in the order they run.</summary>
    public static readonly IReadOnlyList<string> AllPhases = ["ops", "train", "nccl", "bench", "profile"];

    public bool Help { get; private set; }
    public bool Version { get; private set; }
    public bool Simulate { get; private set; }
    public string OutDir { get; private set; } = "";
    public string Device { get; private set; } = "cuda:0";
    public string? OpsFilter { get; private set; }
    public IReadOnlyList<string> Cases => _cases;
    public string? AfterCase { get; private set; }
    public bool SkipLarge { get; private set; }
    public bool CudnnFirst { get; private set; }
    /// <summary>The phases to run, in order.</summary>
    public IReadOnlyList<string> Phases { get; private set; } = AllPhases;
    public double BudgetSeconds { get; private set; } = 420;
    public string? InjectSticky { get; private set; }
    public bool Tf32 { get; private set; }
    public string TrainModel { get; private set; } = "";
    public int TrainBatch { get; private set; }
    public BenchOptions Bench { get; private set; } = null!;
    public ProfileOptions Profile { get; private set; } = null!;

    readonly List<string> _cases = [];

    /// <summary>True when the op case <paramref name="name"/> is selected by --case (exactly) or --ops (a part of the name).</summary>
    public bool Selects(string name) =>
        _cases.Count > 0 ? _cases.Contains(name, StringComparer.Ordinal)
        : OpsFilter is null || name.Contains(OpsFilter, StringComparison.OrdinalIgnoreCase);

    public static KitOptions Parse(string[] args)
    {
        var o = new KitOptions();
        string? trainModel = null, benchModel = null, profileModel = null, modeled = null;
        var skipped = new HashSet<string>(StringComparer.Ordinal);
        List<string>? phases = null;
        double targetMs = 1500;
        int? trainBatch = null, profileBatch = null, batch = null, frames = null, size = null, warmup = null, steps = null;
        double[]? keeps = null;
        Sbp.Tensors.DType[]? precisions = null;
        for (int i = 0; i < args.Length; i++)
        {
            string a = args[i];
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"option {a} needs a value.");
            int Int()
            {
                string v = Value();
                return int.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out int n) && n >= 0
                    ? n : throw new ArgumentException($"option {a}: '{v}' is not a non-negative integer.");
            }
            switch (a)
            {
                case "gpu-check": break;
                case "-h" or "--help": o.Help = true; break;
                case "--version": o.Version = true; break;
                case "--simulate": o.Simulate = true; break;
                case "--out": o.OutDir = Value(); break;
                case "--device": o.Device = Value(); break;
                case "--ops": o.OpsFilter = Value(); break;
                case "--case": o._cases.Add(Value()); break;
                case "--after-case": o.AfterCase = Value(); break;
                case "--no-large": o.SkipLarge = true; break;
                case "--cudnn-first": o.CudnnFirst = true; break;
                case "--skip-ops" or "--skip-train" or "--skip-nccl" or "--skip-bench" or "--skip-profile": skipped.Add(a["--skip-".Length..]); break;
                case "--phase":
                    phases ??= [];
                    phases.AddRange(Value().Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                        .Select(p => AllPhases.Contains(p) ? p : throw new ArgumentException($"--phase: unknown phase '{p}'; the phases are {string.Join(", ", AllPhases)}.")));
                    break;
                case "--budget-s": o.BudgetSeconds = Math.Max(1, Int()); break;
                case "--inject-sticky":
                    string phase = Value();
                    o.InjectSticky = AllPhases.Contains(phase) ? phase : throw new ArgumentException($"--inject-sticky: unknown phase '{phase}'; the phases are {string.Join(", ", AllPhases)}.");
                    break;
                case "--profile-model": profileModel = Value(); break;
                case "--profile-batch": profileBatch = Int(); break;
                case "--modeled": modeled = Value(); break;
                case "--tf32": o.Tf32 = true; break;
                case "--train-model": trainModel = Value(); break;
                case "--train-batch": trainBatch = Int(); break;
                case "--bench-model": benchModel = Value(); break;
                case "--bench-batch":
                    if (i + 1 < args.Length && args[i + 1] == "auto") { i++; batch = 0; }
                    else batch = Math.Max(1, Int());
                    break;
                case "--bench-frames": frames = Int(); break;
                case "--bench-size": size = Int(); break;
                case "--bench-warmup": warmup = Int(); break;
                case "--bench-steps": steps = Int(); break;
                case "--bench-target-ms": targetMs = Math.Max(1, Int()); break;
                case "--keep":
                {
                    string v = Value();
                    keeps = v.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                        .Select(k => double.TryParse(k, NumberStyles.Float, CultureInfo.InvariantCulture, out double d) && d is > 0 and <= 1
                            ? d : throw new ArgumentException($"--keep: '{k}' is not a ratio in (0, 1]."))
                        .ToArray();
                    break;
                }
                case "--precision":
                    precisions = Value().Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                        .Select(p => Sbp.Models.Training.ModeSpec.ParsePrecision(p, "--precision")).Distinct().ToArray();
                    if (precisions.Length == 0) throw new ArgumentException("--precision: give fp32, bf16 or fp16 (comma-separated).");
                    break;
                default: throw new ArgumentException($"unknown argument '{a}'.");
            }
        }
        if (o.OutDir.Length == 0)
            o.OutDir = Environment.GetEnvironmentVariable("OUT") is { Length: > 0 } env ? env : Path.Combine(Environment.CurrentDirectory, "sbp-gpu-out");
        bool sim = o.Simulate;
        o.Phases = AllPhases.Where(p => (phases is null || phases.Contains(p)) && !skipped.Contains(p)).ToList();
        o.TrainModel = trainModel ?? (sim ? "swin-nano" : "swin-micro");
        o.TrainBatch = Math.Max(1, trainBatch ?? (sim ? 1 : 2));
        o.Bench = new BenchOptions(benchModel ?? (sim ? "swin-nano" : "swin-t"), batch ?? (sim ? 1 : 0), frames ?? (sim ? 4 : 16),
            size ?? (sim ? 16 : 224), warmup ?? (sim ? 0 : 1), Math.Max(1, steps ?? (sim ? 1 : 3)),
            // swin-nano's temporal windows hold 2 frames: keep 1/4 cannot keep the same count in each.
            keeps ?? (sim && benchModel is null ? [0.5] : [0.5, 0.25]), o.Tf32, targetMs) { Precisions = precisions ?? [Sbp.Tensors.DType.Float32, Sbp.Tensors.DType.BFloat16] };
        if (o.Bench.Frames < 1 || o.Bench.Size < 1) throw new ArgumentException("--bench-frames and --bench-size must be >= 1.");
        o.Profile = new ProfileOptions(profileModel ?? (sim ? "swin-nano" : "swin-t"), Math.Max(1, profileBatch ?? (sim ? 1 : 8)), o.Bench.Frames, o.Bench.Size, modeled);
        return o;
    }
}
