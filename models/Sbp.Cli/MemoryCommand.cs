using System.CommandLine;
using System.Globalization;
using Sbp.Autograd;
using Sbp.Memory;
using Sbp.Models.Architectures;
using Sbp.Models.Training;
using Sbp.Rng;
using Sbp.Stochastic;
using Sbp.Tensors;

namespace Sbp.Cli;

/// <summary>
/// `sbp memory`: what a model's tape holds for backward at each keep ratio, per SBP region, for a
/// given input size, from one forward pass (no training, no backward); and the multiply-adds the step
/// would do (<see cref="FlopCounter"/>): forward, backward, and the ideal step time against full backprop.
/// </summary>
public static class MemoryCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "model config", DefaultValueFactory = _ => "swin-nano" };
        var batch = new Option<int>("--batch") { Description = "batch size", DefaultValueFactory = _ => 2 };
        var frames = new Option<int?>("--frames") { Description = "frames per clip (default: the config's)" };
        var size = new Option<int?>("--size") { Description = "frame height and width (default: the config's)" };
        var classes = new Option<int?>("--classes") { Description = "classes of the head (default: the config's)" };
        var keeps = new Option<string>("--keep") { Description = "comma-separated keep ratios (1 = full backprop)", DefaultValueFactory = _ => "1,0.5,0.25" };
        var regions = new Option<bool>("--regions") { Description = "print every region, not only the totals" };
        var caching = new Option<string>("--caching") { Description = "SBP caching: sparse-cache or recompute", DefaultValueFactory = _ => "sparse-cache" };
        var ops = new Option<bool>("--ops") { Description = "print what ops outside SBP regions save (what SBP does not reduce)" };
        var saveAs = TrainOptions.SaveActivationsOption();
        saveAs.Description = "comma-separated types the saved activations are held in: fp32, bf16, fp16 (a row per type and keep)";
        var precision = new Option<string>("--precision") { Description = "comma-separated autocast precisions of the forward pass: fp32 (off), bf16, fp16 (a row per precision, saved type and keep)", DefaultValueFactory = _ => "fp32" };
        var options = new TrainOptions();
        var cmd = new Command("memory", "per-region saved-activation bytes of a model at several keep ratios (one forward pass, no training)" + TrainCommand.Examples(
            "sbp memory                                        # swin-nano, keep 1, 0.5 (and 0.25 where its windows allow)",
            "sbp memory --model swin-t --batch 1 --frames 32 --size 224 --keep 1,0.5,0.25 --regions",
            "sbp memory --model swin-t --batch 1 --frames 32 --size 224 --keep 1,0.5 --save-activations fp32,bf16",
            "sbp memory --model swin-t --batch 1 --frames 32 --size 224 --keep 1,0.5 --precision fp32,bf16"));
        foreach (var o in new Option[] { model, batch, frames, size, classes, keeps, saveAs, precision, caching, options.Mask, options.MaskPer, regions, ops, options.Device, options.Tf32 }) cmd.Add(o);
        model.Description = $"model config: {string.Join(", ", ModelFactory.Names)}";
        cmd.SetAction(r =>
        {
            var o = r.InvocationConfiguration.Output;
            var name = r.GetValue(model)!;
            if (!ModelFactory.Names.Contains(name))
                throw new ArgumentException($"--model '{name}' is not a model; use one of {string.Join(", ", ModelFactory.Names)}.");
            foreach (var (option, value) in new[] { ("--batch", (int?)r.GetValue(batch)), ("--frames", r.GetValue(frames)), ("--size", r.GetValue(size)), ("--classes", r.GetValue(classes)) })
                if (value is < 1) throw new ArgumentException($"{option} {value}: must be at least 1.");
            bool defaultKeeps = r.GetResult(keeps) is null or { Implicit: true };
            var (kind, randomOffset) = TrainOptions.ParseMask(r.GetValue(options.Mask));
            var maskScope = TrainOptions.ParseMaskScope(r.GetValue(options.MaskPer)!);
            var regionMode = TrainOptions.ParseCaching(r.GetValue(caching)!);
            var configs = r.GetValue(keeps)!.Split(',', StringSplitOptions.TrimEntries).Select(k => new TrainConfig
            {
                Model = name, Keep = TrainOptions.ParseKeep(k), MaskKind = kind, MaskRandomOffset = randomOffset, MaskScope = maskScope, SbpCaching = regionMode,
            }).Select(c => c with { Mode = c.Keep < 1 ? TrainMode.Sbp : TrainMode.Full }).ToList();
            var precisions = r.GetValue(saveAs)!.Split(',', StringSplitOptions.TrimEntries).Select(TrainOptions.ParseSaveActivations).ToList();
            configs = [.. precisions.SelectMany(p => configs.Select(c => c with { SaveActivationsAs = p }))];
            var autocast = r.GetValue(precision)!.Split(',', StringSplitOptions.TrimEntries).Select(p => ModeSpec.ParsePrecision(p, "--precision")).ToList();
            configs = [.. autocast.SelectMany(p => configs.Select(c => c with { Precision = p }))];
            foreach (var c in configs) c.Validate();
            var device = options.ResolveDevice(r);
            using var probe = ModelFactory.Create(name, new RandomSource(1), Device.CreateCpu("probe"));
            var shape = probe.SampleShape;   // [C, T, H, W], or [T, C, H, W] for the frame detector
            bool framesFirst = probe.FramesFirst;
            int t = r.GetValue(frames) ?? shape[framesFirst ? 0 : 1], hw = r.GetValue(size) ?? shape[2];
            using var m = ModelFactory.Create(name, new RandomSource(1), device, r.GetValue(classes) ?? probe.NumClasses, t, hw, hw);
            int b = r.GetValue(batch);
            var input = framesFirst ? new Shape(b, t, shape[1], hw, hw) : new Shape(b, shape[0], t, hw, hw);
            // A keep ratio the model's regions cannot run (swin-nano's windows of 2 frames cannot keep a quarter):
            // an error naming it when asked for, a note when it is only one of the defaults.
            var skipped = new List<string>();
            foreach (var config in configs.ToList())
            {
                if (Trainer.PolicyFor(config, m) is not { } p || m.SbpProblem(p) is not { } problem) continue;
                if (!defaultKeeps) throw new ArgumentException($"--keep {config.Keep}: {problem}");
                configs.Remove(config);
                skipped.Add($"keep {config.Keep} left out of the defaults: {problem}");
            }
            o.WriteLine($"{name}: {m.ParameterCount():N0} parameters, input {input}, device {device.Name}");
            foreach (var note in skipped) o.WriteLine(note);
            o.WriteLine("| keep | autocast | saved as | saved activations | by type | vs full | SBP regions | held by SBP regions | full backprop in those regions | forward GMAC | backward GMAC | ideal step vs full |");
            o.WriteLine("|---|---|---|---|---|---|---|---|---|---|---|---|");
            long full = 0, fullMacs = 0;
            foreach (var config in configs)
            {
                double keep = config.Keep;
                var policy = Trainer.PolicyFor(config, m);
                using var scope = TensorScope.Begin();
                using var x = Tensor.Zeros(input, device);
                using var tape = Tape.Begin();
                using (config.SaveActivationsAs is { } packed ? Tape.SaveActivationsAs(packed) : default)
                using (Autocast.Begin(config.Precision))
                    m.Forward(x, policy, 0);
                long saved = tape.SavedBytes;
                var cost = FlopCounter.Of(tape);
                if (keep >= 1 && full == 0) (full, fullMacs) = (saved, cost.Macs);   // the first full-backprop row is the baseline
                var reports = tape.Regions.Where(g => g.Kept < g.Size).ToList();
                o.WriteLine($"| {keep:0.###} | {ModeSpec.PrecisionName(config.Precision)} | {config.SaveActivationsAs?.ToString() ?? "Float32"} | {MemoryPool.FormatBytes(saved)} | {ByType(tape)} | {(full == 0 ? "-" : $"{(double)saved / full:0.00}x")} | {reports.Count} | " +
                    $"{MemoryPool.FormatBytes(reports.Sum(g => g.SavedBytes))} (+{MemoryPool.FormatBytes(tape.IndexBytes)} indices) | {MemoryPool.FormatBytes(reports.Sum(g => g.FullSavedBytes ?? 0))} | " +
                    string.Create(CultureInfo.InvariantCulture, $"{cost.ForwardMacs / 1e9:0.###} | {cost.BackwardMacs / 1e9:0.###} | {(fullMacs == 0 ? "-" : $"{(double)cost.Macs / fullMacs:0.000}x")} |"));
                if (r.GetValue(regions))
                    foreach (var g in tape.Regions) o.WriteLine($"    {g}");
                if (r.GetValue(ops))
                    foreach (var g in tape.Nodes.Where(n => n.Region is null && n.SavedBytes > 0).GroupBy(n => (n.Op, Shape: n.OutputShape.ToString()))
                                 .OrderByDescending(g => g.Sum(n => n.SavedBytes)))
                        o.WriteLine($"    outside regions: {g.Key.Op} -> {g.Key.Shape}: {g.Count()} node(s), {MemoryPool.FormatBytes(g.Sum(n => n.SavedBytes))}");
            }
            return 0;
        });
        return cmd;
    }

    /// <summary>"fp32 1200.0 MiB, bf16 300.0 MiB": the saved activations by the type they are held in.</summary>
    static string ByType(Tape tape) => string.Join(", ", tape.SavedBytesByType().Select(e =>
        string.Create(CultureInfo.InvariantCulture, $"{(e.DType == DType.Int32 ? "int32" : ModeSpec.PrecisionName(e.DType))} {e.Bytes / 1048576.0:0.0} MiB")));
}
