using System.Globalization;

namespace Sbp.GpuKit;

/// <summary>The kit's command line (hand-parsed: a handful of options, no reflection).</summary>
public sealed class KitOptions
{
    public const string Usage = """
        usage: sbp-gpu [gpu-check] [options]
          gpu-check (the default): prints the device and library versions, runs every backend op on CUDA
          against the CPU backend, a full SBP training step on both, a size-1 NCCL run, and a step-time / peak-memory benchmark
          (full backprop vs SBP); writes report.json and report.md.
        options:
          --out DIR            where the report goes (default: $OUT, else ./sbp-gpu-out)
          --device cuda:N      the GPU (default cuda:0)
          --simulate           run on the simulated CUDA device (no GPU needed; tiny shapes)
          --ops FILTER         only the op cases whose name contains FILTER
          --skip-ops | --skip-train | --skip-nccl | --skip-bench
                               (nccl: a size-1 NCCL all-reduce and broadcast when libnccl.so.2 is found; "libnccl not found" is no failure)
          --train-model NAME   model of the training-step check (default swin-micro; simulated: swin-nano)
          --train-batch N      (default 2; simulated: 1)
          --bench-model NAME   (default swin-t)    --bench-batch N|auto (default auto: ~1.5 s per full-backprop step, at most 16; simulated: 1)
          --bench-frames N     (default 16)        --bench-size N (default 224)
          --bench-target-ms T  step time the automatic batch aims at (default 1500)
          --bench-warmup N     (default 1)         --bench-steps N (default 3)
          --keep LIST          SBP keep ratios to benchmark (default 0.5,0.25; simulated: 0.5)
          --tf32               allow TF32 tensor cores in cuBLAS / cuDNN (default FP32)
        exit codes: 0 passed, 1 a check failed, 2 no usable GPU (the message says driver missing or no device), 64 bad arguments.
        """;

    public bool Help { get; private set; }
    public bool Simulate { get; private set; }
    public string OutDir { get; private set; } = "";
    public string Device { get; private set; } = "cuda:0";
    public string? OpsFilter { get; private set; }
    public bool SkipOps { get; private set; }
    public bool SkipTrain { get; private set; }
    public bool SkipNccl { get; private set; }
    public bool SkipBench { get; private set; }
    public bool Tf32 { get; private set; }
    public string TrainModel { get; private set; } = "";
    public int TrainBatch { get; private set; }
    public BenchOptions Bench { get; private set; } = null!;

    public static KitOptions Parse(string[] args)
    {
        var o = new KitOptions();
        string? trainModel = null, benchModel = null;
        double targetMs = 1500;
        int? trainBatch = null, batch = null, frames = null, size = null, warmup = null, steps = null;
        double[]? keeps = null;
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
                case "--simulate": o.Simulate = true; break;
                case "--out": o.OutDir = Value(); break;
                case "--device": o.Device = Value(); break;
                case "--ops": o.OpsFilter = Value(); break;
                case "--skip-ops": o.SkipOps = true; break;
                case "--skip-train": o.SkipTrain = true; break;
                case "--skip-nccl": o.SkipNccl = true; break;
                case "--skip-bench": o.SkipBench = true; break;
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
                default: throw new ArgumentException($"unknown argument '{a}'.");
            }
        }
        if (o.OutDir.Length == 0)
            o.OutDir = Environment.GetEnvironmentVariable("OUT") is { Length: > 0 } env ? env : Path.Combine(Environment.CurrentDirectory, "sbp-gpu-out");
        bool sim = o.Simulate;
        o.TrainModel = trainModel ?? (sim ? "swin-nano" : "swin-micro");
        o.TrainBatch = Math.Max(1, trainBatch ?? (sim ? 1 : 2));
        o.Bench = new BenchOptions(benchModel ?? (sim ? "swin-nano" : "swin-t"), batch ?? (sim ? 1 : 0), frames ?? (sim ? 4 : 16),
            size ?? (sim ? 16 : 224), warmup ?? (sim ? 0 : 1), Math.Max(1, steps ?? (sim ? 1 : 3)),
            // swin-nano's temporal windows hold 2 frames: keep 1/4 cannot keep the same count in each.
            keeps ?? (sim && benchModel is null ? [0.5] : [0.5, 0.25]), o.Tf32, targetMs);
        if (o.Bench.Frames < 1 || o.Bench.Size < 1) throw new ArgumentException("--bench-frames and --bench-size must be >= 1.");
        return o;
    }
}
