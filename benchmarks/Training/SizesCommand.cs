using System.Diagnostics;
using System.Globalization;
using Sbp.Autograd;
using Sbp.Models.Architectures;
using Sbp.Models.Training;
using Sbp.Rng;
using Sbp.Stochastic;
using Sbp.Tensors;

namespace Sbp.Benchmarks.Training;

/// <summary>
/// `sizes [MODEL ...] [--keep K] [--out FILE]`: one SBP training step (forward and backward, batch 1) of
/// each Video Swin at every clip size from 32 to 112 px in steps of 8 and 8 to 32 frames in steps of 4,
/// in sparse-cache and recompute mode; prints one line per failure and a table of what ran. Every input
/// size a model accepts must train in every mode (the tests run a sample of these sizes).
/// </summary>
public static class SizesCommand
{
    public static int Run(string[] args)
    {
        var inv = CultureInfo.InvariantCulture;
        var models = new List<string>();
        double keep = 0.5;
        string? output = null;
        for (int i = 0; i < args.Length; i++)
            if (args[i] == "--keep" && i + 1 < args.Length) keep = ModeSpec.ParseKeep(args[++i]);
            else if (args[i] == "--out" && i + 1 < args.Length) output = args[++i];
            else models.Add(args[i]);
        if (models.Count == 0) models = ["swin-nano", "swin-micro"];
        var lines = new List<string> { $"| model | keep | mode | sizes trained | failures | time |", "|---|---|---|---|---|---|" };
        int failures = 0;
        foreach (var name in models)
            foreach (var mode in new[] { RegionMode.SparseCache, RegionMode.Recompute })
            {
                var watch = Stopwatch.StartNew();
                int ok = 0, bad = 0;
                for (int frames = 8; frames <= 32; frames += 4)
                    for (int px = 32; px <= 112; px += 8)
                    {
                        if (Step(name, frames, px, keep, mode) is { } error)
                        {
                            bad++;
                            Console.WriteLine(string.Create(inv, $"{name} {frames}x{px}x{px} keep {keep} {mode}: {error}"));
                        }
                        else ok++;
                    }
                failures += bad;
                lines.Add(string.Create(inv, $"| {name} | {keep:0.###} | {mode} | {ok} of {ok + bad} | {bad} | {watch.Elapsed.TotalSeconds:0} s |"));
            }
        foreach (var l in lines) Console.WriteLine(l);
        if (output is not null) File.WriteAllLines(output, lines);
        return failures == 0 ? 0 : 1;
    }

    /// <summary>One SBP step on a fresh CPU device; null when it ran with a finite loss and finite gradients, else the error.</summary>
    static string? Step(string name, int frames, int px, double keep, RegionMode mode)
    {
        var device = Device.CreateCpu($"sizes {name} {frames}x{px}");
        try
        {
            using var model = ModelFactory.Create(name, new RandomSource(1), device, numClasses: 4, frames, px, px);
            var policy = Trainer.PolicyFor(new TrainConfig { Model = name, Mode = TrainMode.Sbp, Keep = keep, SbpCaching = mode, Coverage = SbpCoverage.AllBlocks }, model)!;
            if (model.SbpProblem(policy) is { } problem) return $"refused before training: {problem}";
            using var scope = TensorScope.Begin();
            var x = Tensor.FromArray(new float[3 * frames * px * px].Select((_, i) => (i % 97) / 97f).ToArray(), new Shape(1, 3, frames, px, px), device);
            using var tape = Tape.Begin();
            var loss = Trainer.Loss(model.Forward(x, policy, 0), Tensor.FromArray(new[] { 1 }, new Shape(1), device));
            tape.Backward(loss);
            float value = loss.Item();
            bool finite = float.IsFinite(value) && model.Parameters().All(p => p.Grad is null || p.Grad.ToArray().All(float.IsFinite));
            return finite ? null : $"loss {value} or a gradient is not finite";
        }
        catch (Exception e) when (e is SbpRegionException or ArgumentException or InvalidOperationException)
        {
            return e.Message;
        }
        finally
        {
            device.Pool.EmptyCache();   // a device per size: give its cached blocks back before the next one
        }
    }
}
