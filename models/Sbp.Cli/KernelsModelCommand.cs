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
        var modes = new Option<string>("--modes") { Description = "training modes to model, comma-separated: full, sbp:KEEP", DefaultValueFactory = _ => "full" };
        var gpu = new Option<string>("--gpu") { Description = "h100-sxm, h100-pcie or h200", DefaultValueFactory = _ => "h100-sxm" };
        var tf32 = TrainOptions.Tf32Option();
        var cmd = new Command("model", "the modeled GPU timeline of one training step (forward, cross-entropy, backward, clipping, AdamW) at full size: " +
            "recorded without running, each kernel counted on the simulator at a reduced shape and scaled" + TrainCommand.Examples(
                "sbp kernels model --model swin-t --batch 8 --frames 16 --size 224 --modes full,sbp:0.5,sbp:0.25",
                "sbp kernels model --model det-r50 --batch 2 --gpu h200"))
        {
            model, batch, frames, size, modes, gpu, tf32,
        };
        cmd.SetAction(r =>
        {
            var o = r.InvocationConfiguration.Output;
            var name = r.GetValue(model)!;
            if (!ModelFactory.Names.Contains(name)) throw new ArgumentException($"--model '{name}' is not a model; use one of {string.Join(", ", ModelFactory.Names)}.");
            int b = r.GetValue(batch);
            if (b < 1) throw new ArgumentException($"--batch {b}: must be at least 1.");
            var spec = GpuSpec.Parse(r.GetValue(gpu)!);
            var runs = r.GetValue(modes)!.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Select(m => (Text: m, Mode: ModeSpec.Parse(m, "--modes"))).ToList();
            var sampler = new LaunchSampler();
            var summary = new List<(string Mode, ModeledStep Step)>();
            foreach (var (text, mode) in runs)
            {
                var step = Record(name, b, r.GetValue(frames), r.GetValue(size), mode, r.GetValue(tf32), out string title);
                var modeled = StepTimeline.Model(step, spec, sampler);
                StepTimeline.Write(modeled, spec, $"{title}, {text}", o);
                o.WriteLine();
                summary.Add((text, modeled));
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

    /// <summary>One training step of the model on a recording device, in phases.</summary>
    static TimelineRecorder Record(string name, int batch, int? frames, int? size, ModeSpec mode, bool tf32, out string title)
    {
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
                recorder.Phase = "forward";
                var logits = m.Forward(x, policy, step);
                var flat = logits.Rank == 3 ? Ops.Reshape(logits, logits.Shape[0] * logits.Shape[1], logits.Shape[2]) : logits;
                var loss = Ops.CrossEntropy(flat, y);
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
