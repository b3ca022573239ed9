using System.CommandLine;
using Sbp.Models.Data;
using Sbp.Models.Training;

namespace Sbp.Models.Cli;

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
        var plots = new Option<string?>("--plots") { Description = "folder for PNG plots (loss curves, memory and accuracy vs keep)" };
        var output = new Option<string?>("--out") { Description = "folder for per-mode metrics.jsonl and checkpoints" };
        var cmd = new Command("compare", "train one model in several modes (full backprop, checkpointing, SBP) and compare accuracy, memory and speed");
        options.AddTo(cmd);
        cmd.Add(modes);
        cmd.Add(json);
        cmd.Add(plots);
        cmd.Add(output);
        cmd.SetAction(r =>
        {
            // Every mode and option is parsed and checked before anything trains (a bad last mode must not cost the first ones).
            var config = options.Config(r) with { OutputDir = r.GetValue(output) };
            var runs = CompareRunner.Plan(config, r.GetValue(modes)!);
            var device = TrainOptions.ResolveDevice(r);
            var spec = options.Spec(r);
            var train = DatasetCatalog.Open(spec, DataSplit.Train);
            var val = DatasetCatalog.Open(spec, DataSplit.Validation);
            CompareRunner.CheckModel(runs, train);
            var rows = CompareRunner.Run(runs, train, val, device, Console.WriteLine);
            Console.WriteLine();
            Console.WriteLine($"{config.Model} on {spec.Source} ({train.Count} train / {val.Count} held-out clips), device {device.Name}:");
            Console.WriteLine(CompareRunner.Table(rows, val.PerFrameLabels));
            if (r.GetValue(json) is { } path)
            {
                File.WriteAllText(path, CompareRunner.Json(rows, config.Model, spec.Source, device.Name));
                Console.WriteLine($"wrote {path}");
            }
            if (r.GetValue(plots) is { } dir)
                foreach (var file in CompareRunner.Plots(rows, dir, val.PerFrameLabels)) Console.WriteLine($"wrote {file}");
            return 0;
        });
        return cmd;
    }
}
