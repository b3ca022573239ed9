using System.CommandLine;
using Sbp.IO;
using Sbp.Models.Data;
using Sbp.Models.Training;

namespace Sbp.Models.Cli;

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
        var cmd = new Command("train", "train a model in one mode; metrics as JSON lines and a checkpoint each epoch when --out is given");
        options.AddTo(cmd);
        cmd.Add(mode);
        cmd.Add(keep);
        cmd.Add(output);
        cmd.Add(resume);
        foreach (var o in new Option[] { every, maxSteps, micro, oomRetry }) cmd.Add(o);
        cmd.SetAction(r =>
        {
            // Every option is parsed and checked before the device, the data or the model is touched.
            var config = CompareRunner.ConfigFor(options.Config(r) with
                {
                    OutputDir = r.GetValue(output), Resume = r.GetValue(resume), CheckpointEvery = r.GetValue(every), MaxSteps = r.GetValue(maxSteps),
                    MicroBatches = r.GetValue(micro), OomRetry = r.GetValue(oomRetry),
                },
                ModeSpec.Of(r.GetValue(mode)!, r.GetValue(keep)!));
            config.Validate();
            var device = TrainOptions.ResolveDevice(r);
            var spec = options.Spec(r);
            var result = new Trainer(config, device).Run(DatasetCatalog.Open(spec, DataSplit.Train), DatasetCatalog.Open(spec, DataSplit.Validation));
            if (result.Epochs.Count == 0) return 0;   // stopped by --max-steps before an epoch ended
            Console.WriteLine(CompareRunner.Table([new CompareRow(config.Label, config.ModeName, config.Keep, result.Final.Top1, result.Final.Top5, result.Final.Map,
                result.PeakBytes, result.SavedActivationBytes, result.StepMs, result.Parameters, result.LossCurve)], result.Final.Map is not null));
            return 0;
        });
        return cmd;
    }

    public static Command CreateEval()
    {
        var options = new TrainOptions();
        var checkpoint = new Option<string>("--checkpoint") { Description = "a checkpoint.safetensors written by `sbp train`", Required = true };
        var cmd = new Command("eval", "evaluate a checkpoint on the held-out split (top-1/top-5, or per-frame mAP for detection)");
        options.AddTo(cmd);
        cmd.Add(checkpoint);
        cmd.SetAction(r =>
        {
            var device = TrainOptions.ResolveDevice(r);
            var spec = options.Spec(r);
            var config = options.Config(r);
            var val = DatasetCatalog.Open(spec, DataSplit.Validation);
            var probe = val.Get(0, null).Clip;
            using var model = Trainer.CreateModel(config.Model, val, probe.Frames, probe.Height, probe.Width, config.Seed, device);
            var path = r.GetValue(checkpoint)!;
            if (!File.Exists(path)) throw new FileNotFoundException($"eval: no checkpoint at {path}; train with `sbp train --out DIR` first.", path);
            var info = Checkpoint.Load(path, model.StateDict(), optimizer: null);
            var (top1, top5, map) = Trainer.Evaluate(model, val, config.BatchSize, probe.Height, probe.Width, config.Seed);
            Console.WriteLine(map is { } mp
                ? $"{config.Model} step {info.Step} on {spec.Source}: per-frame mAP {mp:P2}, frame top-1 {top1:P2} ({val.Count} videos)"
                : $"{config.Model} step {info.Step} on {spec.Source}: top-1 {top1:P2}, top-5 {top5:P2} ({val.Count} clips)");
            return 0;
        });
        return cmd;
    }
}
