using System.CommandLine;
using Sbp.IO;
using Sbp.Models.Data;
using Sbp.Models.Training;

namespace Sbp.Cli;

/// <summary>`sbp train` (one mode, checkpoints each epoch, --resume) and `sbp eval` (a checkpoint on the held-out split).</summary>
public static class TrainCommand
{
    public static Command Create()
    {
        var options = new TrainOptions();
        var mode = new Option<string>("--mode") { Description = "full, checkpoint, sbp or sbp+checkpoint (or sbp:KEEP)", DefaultValueFactory = _ => "sbp" };
        var keep = new Option<string>("--keep") { Description = "SBP keep ratio in (0, 1], e.g. 0.5 or 1/4", DefaultValueFactory = _ => "0.5" };
        var output = new Option<string?>("--out") { Description = "folder for metrics.jsonl and checkpoint.safetensors" };
        var resume = new Option<bool>("--resume") { Description = "continue from the checkpoint in --out" };
        var every = new Option<int?>("--checkpoint-every") { Description = "also checkpoint every N steps (resuming mid-epoch is bit-exact)" };
        var maxSteps = new Option<long?>("--max-steps") { Description = "stop after N steps in total (writes a checkpoint; continue with --resume)" };
        var micro = new Option<int>("--micro-batches") { Description = "split each batch into N micro-batches (gradient accumulation)", DefaultValueFactory = _ => 1 };
        var oomRetry = new Option<bool>("--oom-retry") { Description = "on out-of-memory, retry the step with twice the micro-batches" };
        var cmd = new Command("train", "train a model in one mode; metrics as JSON lines and a checkpoint each epoch when --out is given" + Examples(
            "sbp train --model swin-micro --mode sbp --keep 0.5 --epochs 4 --out runs/swin-sbp",
            "sbp train --out runs/swin-sbp --resume            # continue from runs/swin-sbp/checkpoint.safetensors",
            "sbp train --mode full --max-steps 100 --out runs/r21d",
            "mpirun -np 2 -x DOTNET_PROCESSOR_COUNT=1 sbp train --batch 8   # data parallel: 2 ranks x batch 8"));
        options.AddTo(cmd);
        cmd.Add(mode);
        cmd.Add(keep);
        cmd.Add(output);
        cmd.Add(resume);
        foreach (var o in new Option[] { every, maxSteps, micro, oomRetry }) cmd.Add(o);
        cmd.SetAction(r =>
        {
            // Every option is parsed and checked, and the output folder made, before the device, the data or the model is touched.
            var config = CompareRunner.ConfigFor(options.Config(r) with
                {
                    OutputDir = r.GetValue(output), Resume = r.GetValue(resume), CheckpointEvery = r.GetValue(every), MaxSteps = r.GetValue(maxSteps),
                    MicroBatches = r.GetValue(micro), OomRetry = r.GetValue(oomRetry),
                },
                ModeSpec.Of(r.GetValue(mode)!, r.GetValue(keep)!));
            config.Validate();
            var spec = options.Spec(r);
            if (config.OutputDir is { } dir) OutputPaths.Folder("--out", dir, "metrics.jsonl and checkpoint.safetensors");
            if (config.Resume && !File.Exists(Trainer.CheckpointPath(config.OutputDir!)))
                throw new ArgumentException($"--resume: {config.OutputDir} holds no checkpoint.safetensors, so there is nothing to resume; " +
                    "leave out --resume to start at step 0, or give the --out of an earlier run.");
            return options.RunRanks(r, spec, config.BatchSize, "sbp train", (comm, device, train, val) =>
            {
                using var interrupt = new Interrupt();
                var result = new Trainer(config, device, cancel: interrupt.Token, communicator: comm).Run(train, val);
                if (result.Epochs.Count == 0 || !comm.IsRoot) return 0;   // stopped by --max-steps (or Ctrl-C) before an epoch ended; rank 0 reports
                Console.WriteLine(CompareRunner.Table([CompareRunner.RowOf(config, result)], result.Final.Map is not null));
                return 0;
            });
        });
        return cmd;
    }

    /// <summary>A command description's examples block.</summary>
    internal static string Examples(params string[] lines) => "\n\nExamples:\n" + string.Join("\n", lines.Select(l => "  " + l));

    public static Command CreateEval()
    {
        var options = new TrainOptions();
        var checkpoint = new Option<string>("--checkpoint") { Description = "a checkpoint.safetensors written by `sbp train --out DIR`", Required = true };
        var cmd = new Command("eval", "evaluate a checkpoint on the held-out split (top-1/top-5, or per-frame mAP for detection)" + Examples(
            "sbp eval --checkpoint runs/swin-sbp/checkpoint.safetensors --model swin-micro",
            "sbp eval --checkpoint runs/det/checkpoint.safetensors --model det-micro --data synthetic-detection"));
        options.AddTo(cmd, training: false);
        cmd.Add(checkpoint);
        cmd.SetAction(r =>
        {
            var config = options.EvalConfig(r);
            var spec = options.Spec(r);
            var path = r.GetValue(checkpoint)!;
            if (Directory.Exists(path)) throw new ArgumentException($"--checkpoint {path} is a folder; give the checkpoint.safetensors file in it.");
            if (!File.Exists(path)) throw new ArgumentException($"--checkpoint {path}: no such file; train with `sbp train --out DIR` and give DIR/checkpoint.safetensors.");
            var device = options.ResolveDevice(r);
            var val = options.Open(r, spec, DataSplit.Validation, 1);
            using var model = Trainer.CreateModel(config.Model, val, val.ClipFrames, val.Transform.Height, val.Transform.Width, config.Seed, device);
            CheckpointInfo info;
            try { info = Checkpoint.Load(path, model.StateDict(), optimizer: null); }
            catch (Exception e) when (e is InvalidDataException or IOException)
            {
                throw new ArgumentException($"--checkpoint {path} cannot be read: {e.Message} Give a checkpoint written by `sbp train`.");
            }
            catch (CheckpointMismatchException e)
            {
                throw new ArgumentException($"--checkpoint {path} does not fit --model {config.Model} on this data: {string.Join("; ", e.Problems.Take(3))}" +
                    (e.Problems.Count > 3 ? $"; and {e.Problems.Count - 3} more" : "") + ". Give the --model, --classes and clip size the checkpoint was trained with.");
            }
            var eval = Trainer.Evaluate(model, val, config.BatchSize, config.Seed);
            Console.WriteLine(eval.Map is { } mp
                ? $"{config.Model} step {info.Step} on {spec.Source}: per-frame mAP {mp:P2}, frame top-1 {eval.Top1:P2} ({val.Count} videos)"
                : $"{config.Model} step {info.Step} on {spec.Source}: top-1 {eval.Top1:P2}, top-5 {eval.Top5:P2} ({val.Count} clips)");
            if (!val.PerFrameLabels) Console.WriteLine(eval.PerClassSummary(val.ClassNames));
            return 0;
        });
        return cmd;
    }
}
