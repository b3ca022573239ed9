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
        var seeds = new Option<string?>("--seeds") { Description = "repeat the comparison with each of these seeds (e.g. 1,2,3; weights, masks, data order and synthetic data) and summarise every mode: mean, spread, and the per-seed difference to full backprop" };
        var output = new Option<string?>("--out") { Description = "folder for per-mode metrics.jsonl and checkpoints" };
        var cmd = new Command("compare", "train one model in several modes (full backprop, checkpointing, SBP) and compare accuracy, memory and speed" + TrainCommand.Examples(
            "sbp compare                                   # the main job: r21d-micro, full vs SBP at keep 0.5",
            "sbp compare --model swin-micro --classes 2 --modes full,checkpoint,sbp:0.5,sbp:0.25 --json results.json --plots plots/",
            "sbp compare --model vit-micro --epochs 60 --seeds 1,2,3       # mean and spread over three seeds"));
        options.AddTo(cmd);
        cmd.Add(modes);
        cmd.Add(json);
        cmd.Add(plots);
        cmd.Add(output);
        cmd.Add(seeds);
        cmd.SetAction(r =>
        {
            // Every mode, option and output path is checked before anything trains (a bad last mode or an
            // unwritable --json must not cost the runs before it); output folders are made first.
            var config = options.Config(r) with { OutputDir = r.GetValue(output) };
            var runs = CompareRunner.Plan(config, r.GetValue(modes)!);
            var spec = options.Spec(r);
            IReadOnlyList<ulong>? seedList = r.GetValue(seeds) is { } text ? SeedSummary.Parse(text) : null;
            if (seedList is not null && r.GetResult(options.Seed) is { Implicit: false })
                throw new ArgumentException("give --seed (one comparison) or --seeds (one per seed), not both.");
            if (config.OutputDir is { } dir) OutputPaths.Folder("--out", dir, "a folder of metrics.jsonl and checkpoint.safetensors per mode");
            if (r.GetValue(json) is { } jsonPath) OutputPaths.File("--json", jsonPath);
            if (r.GetValue(plots) is { } plotDir) OutputPaths.Folder("--plots", plotDir, "loss.png, memory.png and accuracy.png");
            return options.RunRanks(r, "sbp compare", (comm, device) =>
            {
                var log = comm.IsRoot ? Console.WriteLine : (Action<string>)(_ => { });
                using var interrupt = new Interrupt();
                var rows = new List<CompareRow>();
                string title = "";
                bool detection = false;
                var seedsToRun = seedList ?? [config.Seed];
                for (int i = 0; i < seedsToRun.Count; i++)
                {
                    // The seed of weights, masks and data order (the runs) and of synthetic data (the spec).
                    ulong seed = seedsToRun[i];
                    var seedRuns = seedList is null ? runs : [.. runs.Select(c => c with { Seed = seed, OutputDir = c.OutputDir is null ? null : Path.Combine(c.OutputDir, $"seed-{seed}") })];
                    var seedSpec = spec with { Seed = seed };
                    var train = options.Open(r, seedSpec, DataSplit.Train, config.BatchSize);
                    var val = options.Open(r, seedSpec, DataSplit.Validation, config.BatchSize);
                    CompareRunner.CheckModel(seedRuns, train);
                    if (seedList is not null) log($"seed {seed} ({i + 1} of {seedList.Count}):");
                    var seedRows = CompareRunner.Run(seedRuns, train, val, device, log, interrupt.Token, comm);
                    detection = val.PerFrameLabels;
                    title = CompareRunner.Title(config, spec.Source, train, val, device);
                    log("");
                    log($"{title}{(seedList is null ? "" : $", seed {seed}")}:");
                    log(CompareRunner.Table(seedRows, detection));
                    rows.AddRange(seedRows);
                }
                if (!comm.IsRoot) return 0;
                if (seedList is not null)
                {
                    title += $", seeds {string.Join(",", seedList)}";
                    Console.WriteLine($"{title}, per mode:");
                    Console.WriteLine(SeedSummary.Table(rows, detection));
                }
                if (r.GetValue(json) is { } path)
                {
                    File.WriteAllText(path, CompareRunner.Json(rows, config.Model, spec.Source, device.Name));
                    Console.WriteLine($"wrote {path}");
                }
                if (r.GetValue(plots) is { } plotsDir)
                {
                    // one bar and curve per run: with several seeds each is labelled with its seed
                    var plotted = seedList is null ? rows : [.. rows.Select(row => row with { Label = $"{row.Label} s{row.Seed}" })];
                    foreach (var file in ComparePlots.Plots(plotted, plotsDir, detection, title)) Console.WriteLine($"wrote {file}");
                }
                return 0;
            });
        });
        return cmd;
    }
}
