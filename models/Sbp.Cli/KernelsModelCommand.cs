using System.CommandLine;
using System.Globalization;
using Sbp.Autograd;
using Sbp.KernelProfile;
using Sbp.Models.Architectures;
using Sbp.Models.Training;
using Sbp.Optim;
using Sbp.Rng;
using Sbp.Tensors;

namespace Sbp.Cli;

/// <summary>
/// `sbp kernels model`: a full-size training step recorded on a device that runs nothing (<see cref="TimelineRecorder"/>),
/// then its modeled GPU time (<see cref="StepTimeline"/>): per phase, per kernel and library call, each kernel's
/// fraction of its own roofline, and the host syncs.
/// </summary>
public static class KernelsModelCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "model config", DefaultValueFactory = _ => "swin-t" };
        var batch = new Option<int>("--batch") { Description = "clips per step", DefaultValueFactory = _ => 8 };
        var frames = new Option<int?>("--frames") { Description = "frames per clip (default: the model's)" };
        var size = new Option<int?>("--size") { Description = "frame height and width (default: the model's)" };
        var modes = new Option<string>("--modes") { Description = "training modes to model, comma-separated: full, sbp:KEEP, each optionally led by bf16/ or fp16/ (autocast)", DefaultValueFactory = _ => "full" };
        var gpu = new Option<string>("--gpu") { Description = "h100-sxm, h100-pcie or h200", DefaultValueFactory = _ => "h100-sxm" };
        var tf32 = TrainOptions.Tf32Option();
        var kitFile = new Option<string?>("--kit-file") { Description = "also write the first mode's modeled times (phases and ops) as the GPU kit's --modeled file" };
        var cmd = new Command("model", "the modeled GPU timeline of one training step (forward, cross-entropy, backward, clipping, AdamW) at full size: " +
            "recorded without running, each kernel counted on the simulator at a reduced shape and scaled" + TrainCommand.Examples(
                "sbp kernels model --model swin-t --batch 8 --frames 16 --size 224 --modes full,sbp:0.5,sbp:0.25",
                "sbp kernels model --model det-r50 --batch 2 --gpu h200"))
        {
            model, batch, frames, size, modes, gpu, tf32, kitFile,
        };
        cmd.SetAction(r =>
        {
            var o = r.InvocationConfiguration.Output;
            var name = r.GetValue(model)!;
            if (!ModelFactory.Names.Contains(name)) throw new ArgumentException($"--model '{name}' is not a model; use one of {string.Join(", ", ModelFactory.Names)}.");
            int b = r.GetValue(batch);
            if (b < 1) throw new ArgumentException($"--batch {b}: must be at least 1.");
            foreach (var (option, value) in new[] { ("--frames", r.GetValue(frames)), ("--size", r.GetValue(size)) })
                if (value is < 1) throw new ArgumentException($"{option} {value}: must be at least 1.");
            if (r.GetValue(kitFile) is { } target && (Directory.Exists(target) || !Directory.Exists(Path.GetDirectoryName(Path.GetFullPath(target)))))
                throw new ArgumentException($"--kit-file '{target}': give a file path in an existing folder.");
            var spec = GpuSpec.Parse(r.GetValue(gpu)!);
            var runs = r.GetValue(modes)!.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Select(m => (Text: m, Mode: ModeSpec.Parse(m, "--modes"))).ToList();
            var sampler = new LaunchSampler();
            var summary = new List<(string Mode, ModeledStep Step)>();
            foreach (var (text, mode) in runs)
            {
                var step = Record(name, b, r.GetValue(frames), r.GetValue(size), mode, r.GetValue(tf32), spec, sampler, out string title, out string config, out var ops);
                var modeled = StepTimeline.Model(step, spec, sampler);
                StepTimeline.Write(modeled, spec, $"{title}, {text}", o);
                o.WriteLine();
                o.WriteLine("  per tape op (modeled; clipping and AdamW run outside the tape):");
                foreach (var line in ops.Format(top: 12).Split('\n', StringSplitOptions.RemoveEmptyEntries)) o.WriteLine("  " + line);
                o.WriteLine();
                summary.Add((text, modeled));
                if (summary.Count == 1 && r.GetValue(kitFile) is { } path)
                    File.WriteAllText(path, KitFile(modeled, ops, spec, $"{title}, {text}", config));
            }
            if (summary.Count > 1)
            {
                var c = CultureInfo.InvariantCulture;
                o.WriteLine("| mode | modeled step (ms) | vs " + summary[0].Mode + " | forward | backward | optimizer |");
                o.WriteLine("|---|---|---|---|---|---|");
                foreach (var (m, s) in summary)
                    o.WriteLine(string.Create(c, $"| {m} | {s.Seconds * 1e3:F2} | {s.Seconds / summary[0].Step.Seconds:F3}x | {s.PhaseSeconds("forward") * 1e3:F2} | {s.PhaseSeconds("backward") * 1e3:F2} | {s.PhaseSeconds("optimizer") * 1e3:F2} |"));
            }
            return 0;
        });
        return cmd;
    }

    /// <summary>
    /// The GPU kit's modeled-times file (kernels/Sbp.GpuKit, --modeled): a config line, the phase totals, then one line per tape
    /// op and phase keyed as the kit's profile keys its rows ("op/phase"; SBP's own work "engine: op/phase").
    /// </summary>
    static string KitFile(ModeledStep step, OpProfile ops, GpuSpec gpu, string title, string config)
    {
        var c = CultureInfo.InvariantCulture;
        var lines = new List<string>
        {
            $"# Modeled {gpu.Name} times (ms) of one training step: {title}.",
            "# Written by `sbp kernels model ... --kit-file` (benchmarks/results/gpu-model); the kit shows them next to its CUDA-event times.",
            $"config {config}",
            string.Create(c, $"forward {step.PhaseSeconds("forward") * 1e3:F3}"),
            string.Create(c, $"backward {step.PhaseSeconds("backward") * 1e3:F3}"),
            string.Create(c, $"optimizer {step.PhaseSeconds("optimizer") * 1e3:F3}"),
            string.Create(c, $"clip + adamw.step/optimizer {step.PhaseSeconds("optimizer") * 1e3:F3}"),
        };
        lines.AddRange(ops.Rows()
            .GroupBy(row => (Op: row.Internal ? "engine: " + row.Op : row.Op, Phase: row.Phase == OpProfile.Phase.Forward ? "forward" : "backward"))
            .Select(g => string.Create(c, $"{g.Key.Op}/{g.Key.Phase} {g.Sum(row => row.Milliseconds):F3}")));
        return string.Join('\n', lines) + "\n";
    }

    /// <summary>One training step of the model on a recording device, in phases.</summary>
    static TimelineRecorder Record(string name, int batch, int? frames, int? size, ModeSpec mode, bool tf32, GpuSpec gpu, LaunchSampler sampler,
        out string title, out string config, out OpProfile ops)
    {
        ops = null!;
        var recorder = new TimelineRecorder($"cuda-model {name}");
        recorder.Device.AllowTf32 = tf32;
        using var probe = ModelFactory.Create(name, new RandomSource(1), Device.CreateCpu("probe"));
        var shape = probe.SampleShape;
        int t = frames ?? shape[probe.FramesFirst ? 0 : 1], hw = size ?? shape[2];
        using var m = ModelFactory.Create(name, new RandomSource(1), recorder.Device, probe.NumClasses, t, hw, hw);
        var input = probe.FramesFirst ? new Shape(batch, t, shape[1], hw, hw) : new Shape(batch, shape[0], t, hw, hw);
        var policy = Trainer.PolicyFor(new TrainConfig { Model = name, Mode = mode.Mode, Keep = mode.Keep }, m);
        if (policy is not null && m.SbpProblem(policy) is { } problem) throw new ArgumentException($"--modes {mode}: {problem}");
        title = $"{name}, batch {batch}, input {input}";
        config = $"{name} {batch} {t} {hw}";
        using var optimizer = new AdamW(m.NamedParameters(), learningRate: 1e-3f, weightDecay: 0.05f);
        using var scope = TensorScope.Begin();
        var x = Tensor.Zeros(input, recorder.Device);
        int labels = m.PerFrameLabels ? batch * t : batch;
        var y = Tensor.FromArray(new int[labels], new Shape(labels), recorder.Device);
        // The first step learns what each SBP region needs (RegionHints) and may re-run bodies; the step modeled is the next one.
        for (int step = 0; step < 2; step++)
        {
            if (step == 1) recorder.Start();
            m.ZeroGrad();
            using (var tape = Tape.Begin())
            {
                if (step == 1) tape.Profile = ops = recorder.ModeledProfile(gpu, sampler);
                recorder.Phase = "forward";
                Tensor loss;
                using (Autocast.Begin(mode.Precision ?? DType.Float32))
                {
                    var logits = m.Forward(x, policy, step);
                    var flat = logits.Rank == 3 ? Ops.Reshape(logits, logits.Shape[0] * logits.Shape[1], logits.Shape[2]) : logits;
                    loss = Ops.CrossEntropy(flat, y);
                }
                recorder.Phase = "backward";
                tape.Backward(loss);
            }
            recorder.Phase = "optimizer";
            using (GradClip.Clip(m.NamedParameters(), 1f)) { }
            optimizer.Step();
        }
        recorder.Stop();
        return recorder;
    }
}
