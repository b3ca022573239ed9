using System.CommandLine;
using Sbp.Models.Data;
using Sbp.Models.Training;

namespace Sbp.Cli;

/// <summary>
/// `sbp compare`: the main job. Trains the same model on the same data and seed in several modes
/// and prints accuracy, peak memory, saved activations and step time side by side.
/// </summary>
public static class CompareCommand
{
    public static Command Create()
    {
        var options = new TrainOptions();
        var modes = new Option<string>("--modes") { Description = "comma-separated modes: " + ModeSpec.Forms, DefaultValueFactory = _ => "full,sbp:0.5" };
        var json = new Option<string?>("--json") { Description = "write the results as a JSON list (one object per mode)" };
        var plots = new Option<string?>("--plots") { Description = "folder for PNG plots (loss curves, memory and accuracy per mode)" };
        var output = new Option<string?>("--out") { Description = "folder for per-mode metrics.jsonl and checkpoints" };
        var cmd = new Command("compare", "train one model in several modes (full backprop, checkpointing, SBP) and compare accuracy, memory and speed" + TrainCommand.Examples(
            "sbp compare                                   # the main job: r21d-micro, full vs SBP at keep 0.5",
            "sbp compare --model swin-micro --classes 2 --modes full,checkpoint,sbp:0.5,sbp:0.25 --json results.json --plots plots/"));
        options.AddTo(cmd);
        cmd.Add(modes);
        cmd.Add(json);
        cmd.Add(plots);
        cmd.Add(output);
        cmd.SetAction(r =>
        {
            // Every mode, option and output path is checked before anything trains (a bad last mode or an
            // unwritable --json must not cost the runs before it); output folders are made first.
            var config = options.Config(r) with { OutputDir = r.GetValue(output) };
            var runs = CompareRunner.Plan(config, r.GetValue(modes)!);
            var spec = options.Spec(r);
            if (config.OutputDir is { } dir) OutputPaths.Folder("--out", dir, "a folder of metrics.jsonl and checkpoint.safetensors per mode");
            if (r.GetValue(json) is { } jsonPath) OutputPaths.File("--json", jsonPath);
            if (r.GetValue(plots) is { } plotDir) OutputPaths.Folder("--plots", plotDir, "loss.png, memory.png and accuracy.png");
            return options.RunRanks(r, spec, config.BatchSize, "sbp compare", (comm, device, train, val) =>
            {
                CompareRunner.CheckModel(runs, train);
                using var interrupt = new Interrupt();
                var rows = CompareRunner.Run(runs, train, val, device, comm.IsRoot ? Console.WriteLine : _ => { }, interrupt.Token, comm);
                if (!comm.IsRoot) return 0;
                Console.WriteLine();
                var title = CompareRunner.Title(config, spec.Source, train, val, device);
                Console.WriteLine($"{title}:");
                Console.WriteLine(CompareRunner.Table(rows, val.PerFrameLabels));
                if (r.GetValue(json) is { } path)
                {
                    File.WriteAllText(path, CompareRunner.Json(rows, config.Model, spec.Source, device.Name));
                    Console.WriteLine($"wrote {path}");
                }
                if (r.GetValue(plots) is { } plotsDir)
                    foreach (var file in ComparePlots.Plots(rows, plotsDir, val.PerFrameLabels, title)) Console.WriteLine($"wrote {file}");
                return 0;
            });
        });
        return cmd;
    }
}
