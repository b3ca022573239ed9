using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Sbp.Autograd;
using Sbp.Distributed;
using Sbp.IO;
using Sbp.Memory;
using Sbp.Models.Architectures;
using Sbp.Models.Pretrained;
using Sbp.Models.Data;
using Sbp.Optim;
using Sbp.Rng;
using Sbp.Stochastic;
using Sbp.Tensors;

namespace Sbp.Models.Training;

/// <summary>One epoch's numbers: training loss, held-out accuracy (or per-frame mAP), time and memory.</summary>
public sealed record EpochResult(int Epoch, long Step, double TrainLoss, double Top1, double Top5, double? Map, double MeanStepMs);

/// <summary>
/// What a run measured. <see cref="PeakBytes"/>: the device pool's peak during training (parameters,
/// gradients, optimizer state, activations, workspace); <see cref="SavedActivationBytes"/>: the
/// most bytes a tape held for backward at the end of a forward pass; <see cref="StepMs"/>: the
/// mean time of a training step after the first.
/// </summary>
public sealed record TrainResult(TrainConfig Config, string Model, long Parameters, IReadOnlyList<EpochResult> Epochs,
    IReadOnlyList<(long Step, double Loss)> LossCurve, long PeakBytes, long SavedActivationBytes, double StepMs,
    IReadOnlyList<RegionReport> Regions, long Steps)
{
    /// <summary>The last finished epoch (a run stopped by MaxSteps before any epoch ended has none).</summary>
    public EpochResult Final => Epochs.Count > 0 ? Epochs[^1] : throw new InvalidOperationException($"train: the run stopped at step {Steps} before finishing an epoch.");
}

/// <summary>
/// Trains a video model on a dataset in one mode (full backprop, checkpointing or SBP): AdamW with
/// warmup + cosine, cross-entropy (per frame for detection), evaluation after each epoch, metrics
/// as JSON lines and a checkpoint per epoch when an output folder is given, resume from it.
/// </summary>
public sealed partial class Trainer
{
    readonly TrainConfig _config;
    readonly Device _device;
    readonly Action<string> _log;
    readonly CancellationToken _cancel;
    readonly Communicator _comm;

    /// <param name="config">What to train and how (checked before any work).</param>
    /// <param name="device">Where to train; null = <see cref="Device.Default"/>.</param>
    /// <param name="log">Where progress lines go; null = the console.</param>
    /// <param name="cancel">Checked after every step: when set (Ctrl-C), the run saves a checkpoint (with an
    /// output folder), says so, and ends with an <see cref="OperationCanceledException"/>.</param>
    /// <param name="communicator">Data parallelism: the ranks training together (each runs this with the same config; rank 0
    /// logs, writes metrics and checkpoints); null: this process alone.</param>
    public Trainer(TrainConfig config, Device? device = null, Action<string>? log = null, CancellationToken cancel = default, Communicator? communicator = null)
    {
        config.Validate();
        _config = config;
        _device = device ?? Device.Default;
        _comm = communicator ?? new SingleProcessCommunicator();
        _log = !_comm.IsRoot ? _ => { } : log ?? Console.WriteLine;
        _cancel = cancel;
    }

    /// <summary>Where a run with output folder <paramref name="dir"/> keeps its checkpoint.</summary>
    public static string CheckpointPath(string dir) => Path.Combine(dir, "checkpoint.safetensors");

    /// <summary>The SBP policy of a mode: null for full backprop; keep 1 with checkpointing for plain checkpointing.</summary>
    public static SbpPolicy? PolicyFor(TrainConfig c, VideoModel model, int rank = 0)
    {
        if (c.Mode == TrainMode.Full) return null;
        var kind = c.MaskKind ?? DefaultMaskKind(model, c.Keep);
        var masks = new KeepMaskPolicy(kind, c.Mode == TrainMode.Checkpoint && c.Keep >= 1 ? 1 : c.Keep, DistributedRun.MaskSeed(c, rank))
        {
            RandomOffset = c.MaskRandomOffset,
            Scope = c.MaskScope,
        };
        var caching = c.Mode == TrainMode.Checkpoint ? RegionMode.Checkpoint : c.SbpCaching;
        return new SbpPolicy(masks, model.SbpPlacement, caching, c.Rescale, c.Coverage);
    }

    /// <summary>The model's default mask kind (strided over frames, grid or random over ViT tokens).</summary>
    public static MaskKind DefaultMaskKind(VideoModel model, double keep) => model.DefaultMaskKind(keep);

    /// <summary>The default mask kind of a model config name (before the model exists: options are checked before any work).</summary>
    public static MaskKind DefaultMaskKind(string model, double keep) => ModelFactory.DefaultMaskKind(model, keep);

    /// <summary>The model for a dataset: the config's architecture with the dataset's class count and clip size; data whose labels
    /// the model cannot learn (per frame or per clip) is rejected here, before any work.</summary>
    public static VideoModel CreateModel(string name, IVideoDataset data, int frames, int height, int width, ulong seed, Device device, float? dropPath = null)
    {
        CheckLabels(name, data);
        return ModelFactory.Create(name, new RandomSource(seed).Split("model"), device, data.ClassNames.Count, frames, height, width, dropPath);
    }

    /// <summary>Rejects data whose labels the model of config <paramref name="name"/> cannot learn (per-frame labels for a clip model, or the reverse).</summary>
    public static void CheckLabels(string name, IVideoDataset data)
    {
        bool perFrame = ModelFactory.PerFrameLabels(name);
        if (perFrame == data.PerFrameLabels) return;
        string Models(bool kind) => string.Join(", ", ModelFactory.Names.Where(n => ModelFactory.PerFrameLabels(n) == kind));
        throw new ArgumentException(perFrame
            ? $"--model {name} predicts a class per frame and trains on per-frame labels, but the data ({data.Describe()}) has one label per clip: use --data synthetic-detection or an annotation file, or a clip model ({Models(false)})."
            : $"--model {name} predicts one class per clip, but the data ({data.Describe()}) has a label per frame: use a per-frame model ({Models(true)}) or clip data (synthetic-actions, a list file).");
    }

    /// <summary>The loss of logits [B, K] against labels [B], or per frame [B, T, K] against [B, T]; <paramref name="labelSmoothing"/> as in <see cref="Ops.CrossEntropy"/>.</summary>
    public static Tensor Loss(Tensor logits, Tensor labels, float labelSmoothing = 0f)
    {
        if (logits.Rank == 3)
        {
            int rows = logits.Shape[0] * logits.Shape[1];
            using var flat = Ops.Reshape(logits, rows, logits.Shape[2]);
            using var targets = Ops.Reshape(labels, rows);
            return Ops.CrossEntropy(flat, targets, labelSmoothing);
        }
        return Ops.CrossEntropy(logits, labels, labelSmoothing);
    }

    /// <summary>The model's input from a batch [B, C, T, H, W] (<see cref="VideoModel.InputOf"/>).</summary>
    public static Tensor Input(VideoModel model, Tensor clips) => model.InputOf(clips);

    public TrainResult Run(IVideoDataset train, IVideoDataset val)
    {
        var c = _config;
        int frames = train.ClipFrames, height = train.Transform.Height, width = train.Transform.Width;
        using var model = CreateModel(c.Model, train, frames, height, width, c.Seed, _device, c.DropPath);
        var policy = PolicyFor(c, model, _comm.Rank);
        if (policy is not null && model.SbpProblem(policy) is { } problem) throw new ArgumentException($"{c.Label}: {problem}");
        var loader = new VideoLoader(train, new VideoLoaderOptions
        {
            BatchSize = c.BatchSize, Train = true, Seed = c.Seed, Workers = c.Workers, Rank = _comm.Rank, Ranks = _comm.Size,
        }, _device);
        if (c.InitPath is { } init)
            _log($"{c.Label}: initialized from {init}: {PretrainedInit.Load(model, PretrainedInit.Read(init, c.InitFormat), c.ResetHead)}");
        // What the model needs from data before its first step (a resumed checkpoint then replaces it; pretrained weights bring their own).
        else if (model.NeedsCalibration)
            using (var first = loader.Batch(loader.Order(0).Take(c.BatchSize).ToArray()))
            using (var firstInputs = model.InputOf(first.Clips))
                model.Calibrate(firstInputs);
        using var dist = new DistributedRun(_comm, c, model, train);   // with several ranks: checked alike, then rank 0's weights everywhere
        int stepsPerEpoch = Math.Min(loader.BatchesPerEpoch, c.MaxStepsPerEpoch ?? int.MaxValue);
        long totalSteps = (long)stepsPerEpoch * c.Epochs;
        using var optimizer = new AdamW(ParamGroup.SplitDecay(model.NamedParameters(), c.WeightDecay), c.PeakLearningRate);
        var scaler = c.Precision == DType.Float16 ? new GradScaler() : null;
        int skippedSteps = 0;
        var schedule = new WarmupCosine(c.PeakLearningRate, Math.Min(c.WarmupSteps, totalSteps / 4), totalSteps);

        string? checkpointPath = c.OutputDir is null ? null : CheckpointPath(c.OutputDir);
        long step = 0;
        int firstEpoch = 0;
        double epochLossSum = 0;   // the current epoch's loss so far (kept in checkpoints: a resumed epoch reports all of it)
        int epochSteps = 0;
        if (c.Resume)
        {
            if (!File.Exists(checkpointPath))
                throw new ArgumentException($"--resume: {c.OutputDir} holds no checkpoint.safetensors; leave out --resume to start at step 0.");
            CheckpointInfo info;
            try { info = Checkpoint.Load(checkpointPath!, model.StateDict(), optimizer); }
            catch (Exception e) when (e is InvalidDataException or IOException or CheckpointMismatchException)
            {
                throw new ArgumentException($"--resume: {checkpointPath} cannot be resumed: {e.Message} Remove it (or the whole --out folder) to start at step 0.");
            }
            model.LoadRandomSources(info.RandomSources, strict: false);
            step = info.Step;
            firstEpoch = (int)(step / stepsPerEpoch);
            if (step % stepsPerEpoch != 0 && info.Extra.TryGetValue("epoch_loss_sum", out var sum) && info.Extra.TryGetValue("epoch_steps", out var n))
            {
                epochLossSum = double.Parse(sum, CultureInfo.InvariantCulture);
                epochSteps = int.Parse(n, CultureInfo.InvariantCulture);
            }
            if (scaler is not null && info.Extra.TryGetValue("grad_scale", out var scale) && info.Extra.TryGetValue("grad_scale_growth", out var growth))
                scaler.Restore(float.Parse(scale, CultureInfo.InvariantCulture), int.Parse(growth, CultureInfo.InvariantCulture));
            _log($"resumed from {checkpointPath} at step {step} (epoch {firstEpoch + 1}, step {step - (long)firstEpoch * stepsPerEpoch + 1} of {stepsPerEpoch})");
        }
        using var metrics = c.OutputDir is null || !_comm.IsRoot ? null : OpenMetrics(c.OutputDir, c.Resume ? step : null);

        _log($"{c.Label}: {c.Model} ({model.ParameterCount():N0} parameters) on {train.Describe()}, {c.Epochs} epoch{(c.Epochs == 1 ? "" : "s")} x {stepsPerEpoch} steps, batch {c.BatchSize}, peak lr {c.PeakLearningRate.ToString("G3", CultureInfo.InvariantCulture)}, device {_device.Name}" +
            (c.LabelSmoothing > 0 ? string.Create(CultureInfo.InvariantCulture, $", label smoothing {c.LabelSmoothing}") : "") +
            (c.DropPath is { } dropPath ? string.Create(CultureInfo.InvariantCulture, $", drop path {dropPath}") : "") +
            (c.SaveActivationsAs is { } saveAs ? $", activations saved as {saveAs}" : "") +
            (c.Precision == DType.Float32 ? "" : $", autocast {c.Precision}{(scaler is null ? "" : " with dynamic loss scaling")}") +
            (policy is null ? "" : $", SBP masks {c.MaskDescription}{(c.MasksPerRank && _comm.Size > 1 ? " drawn per rank" : "")}") +
            (_comm.Size == 1 ? "" : $", data parallel over {_comm.Size} ranks ({_comm.Engine}): batch {c.BatchSize} per rank, {c.BatchSize * _comm.Size} in all; memory figures are per rank"));
        _log($"  input: {train.Transform.Describe()}");
        var epochs = new List<EpochResult>();
        var curve = new List<(long, double)>();
        var regions = new List<RegionReport>();
        bool keepNoted = false;
        long savedMax = 0;
        double stepMsSum = 0;
        int timedSteps = 0;
        int microBatches = c.MicroBatches;
        _device.Pool.ResetPeak();
        model.Train();
        void Save()
        {
            if (checkpointPath is null) return;
            var sources = model.NamedRandomSources().ToDictionary(s => s.Name, s => s.Source);
            var extra = new Dictionary<string, string>
            {
                ["epoch_loss_sum"] = epochLossSum.ToString("R", CultureInfo.InvariantCulture),
                ["epoch_steps"] = epochSteps.ToString(CultureInfo.InvariantCulture),
            };
            if (scaler is not null)
            {
                extra["grad_scale"] = scaler.Scale.ToString("R", CultureInfo.InvariantCulture);
                extra["grad_scale_growth"] = scaler.GrowthTracker.ToString(CultureInfo.InvariantCulture);
            }
            dist.Save(() => Checkpoint.Save(checkpointPath, model.StateDict(), optimizer, new CheckpointInfo(step, step, sources, extra)), step);
        }
        for (int epoch = firstEpoch; epoch < c.Epochs; epoch++)
        {
            if (epoch != firstEpoch) (epochLossSum, epochSteps) = (0, 0);
            // Resuming mid-epoch: the epoch's order is a function of (seed, epoch); skip the batches already trained on.
            int offset = epoch == firstEpoch ? (int)(step - (long)epoch * stepsPerEpoch) : 0, index = 0;
            var progress = new ProgressLine($"{c.Label} epoch {epoch + 1}/{c.Epochs}", stepsPerEpoch, c.BatchSize * _comm.Size, start: offset, quiet: !_comm.IsRoot);
            bool stopped = false;
            foreach (var batch in loader.Epoch(epoch))
            {
                using (batch)
                {
                    if (index >= stepsPerEpoch || stopped) break;
                    if (index++ < offset) continue;
                    var watch = Stopwatch.StartNew();
                    double lossValue;
                    long saved;
                    while (true)
                    {
                        try
                        {
                            var profile = c.ProfileStep == step ? new OpProfile() : null;
                            (lossValue, saved) = TrainStep(model, policy, batch, step, microBatches, regions.Count == 0 ? regions : null, profile, c.LabelSmoothing, dist, c.SaveActivationsAs,
                                c.Precision, scaler);
                            if (profile is not null) _log($"  op profile of step {step} (forward and backward, ms per op kind):\n{profile.Format()}");
                            break;
                        }
                        catch (DeviceOutOfMemoryException e) when (c.OomRetry && microBatches < batch.Size)
                        {
                            // The step's tensors were freed on the way out; partial gradients are dropped.
                            optimizer.ZeroGrad();
                            microBatches = Math.Min(batch.Size, microBatches * 2);
                            _log($"  out of memory at step {step} ({MemoryPool.FormatBytes(e.RequestedBytes)} requested, {MemoryPool.FormatBytes(_device.Pool.InUseBytes)} still in use after freeing the step); " +
                                $"retrying with {microBatches} micro-batches of about {(batch.Size + microBatches - 1) / microBatches} samples");
                        }
                    }
                    if (!keepNoted && regions.Count > 0)
                    {
                        keepNoted = true;
                        if (EffectiveKeepNote(regions, c.Keep) is { } note) _log(note);
                    }
                    savedMax = Math.Max(savedMax, saved);
                    (lossValue, bool interrupted) = dist.AfterStep(lossValue, _cancel.IsCancellationRequested);
                    if (!double.IsFinite(lossValue))
                        throw new TrainingException($"train: the loss became {lossValue} at step {step} (epoch {epoch + 1}); lower the learning rate ({c.PeakLearningRate}).");
                    schedule.Apply(optimizer, step);
                    if (scaler is null) optimizer.Step();
                    else
                    {
                        // fp16: gradients unscaled once; a step with an infinite or NaN gradient is skipped and the scale backs off
                        if (!scaler.Step(optimizer)) skippedSteps++;
                        scaler.Update();
                    }
                    optimizer.ZeroGrad();
                    watch.Stop();
                    if (timedSteps > 0 || curve.Count > 0) { stepMsSum += watch.Elapsed.TotalMilliseconds; timedSteps++; }
                    epochLossSum += lossValue;
                    epochSteps++;
                    step++;
                    curve.Add((step, lossValue));
                    metrics?.Write(new() { ["type"] = "step", ["mode"] = c.Label, ["epoch"] = epoch + 1, ["step"] = step, ["loss"] = lossValue, ["lr"] = optimizer.LearningRate, ["step_ms"] = watch.Elapsed.TotalMilliseconds });
                    progress.Report(index, epochLossSum / epochSteps);
                    if (c.CheckpointEvery is { } every && step % every == 0) Save();
                    if (c.MaxSteps is { } max && step >= max) stopped = true;
                    if (interrupted)
                    {
                        progress.Done();
                        Save();
                        _log(checkpointPath is null
                            ? $"interrupted at step {step}; nothing was saved (no --out)."
                            : $"interrupted at step {step}; saved {checkpointPath}: continue with the same command and --resume.");
                        throw new OperationCanceledException(_cancel.IsCancellationRequested ? _cancel : new CancellationToken(true));
                    }
                }
            }
            progress.Done();
            if (stopped && step % stepsPerEpoch != 0)
            {
                Save();
                _log($"stopped at step {step} (--max-steps); continue with --resume");
                break;
            }
            if (dist.TimingLine() is { } timing) _log(timing);
            if (scaler is not null) _log($"  loss scale {scaler.Scale:G}; {skippedSteps} step{(skippedSteps == 1 ? "" : "s")} skipped for infinite or NaN gradients so far");
            var eval = Evaluate(model, val, c.BatchSize, c.Seed, _comm, c.Precision);
            var (top1, top5, map) = (eval.Top1, eval.Top5, eval.Map);
            var result = new EpochResult(epoch + 1, step, epochLossSum / Math.Max(epochSteps, 1), top1, top5, map, timedSteps == 0 ? 0 : stepMsSum / timedSteps);
            epochs.Add(result);
            _log(val.PerFrameLabels
                ? $"  epoch {epoch + 1}: loss {result.TrainLoss:0.000}, per-frame mAP {map:P1}, frame top-1 {top1:P1}"
                : $"  epoch {epoch + 1}: loss {result.TrainLoss:0.000}, top-1 {top1:P1}, top-5 {top5:P1}");
            if (epoch + 1 == c.Epochs && !val.PerFrameLabels) _log($"  {eval.PerClassSummary(val.ClassNames)}");
            metrics?.Write(new() { ["type"] = "epoch", ["mode"] = c.Label, ["epoch"] = epoch + 1, ["step"] = step, ["loss"] = result.TrainLoss, ["top1"] = top1, ["top5"] = top5, ["map"] = map, ["step_ms"] = result.MeanStepMs });
            Save();
            if (stopped) break;
        }
        if (epochs.Count == 0 && firstEpoch >= c.Epochs) _log($"nothing to do: the checkpoint in {c.OutputDir} is already at epoch {c.Epochs} (step {step}).");
        return new TrainResult(c, c.Model, model.ParameterCount(), epochs, curve, _device.Pool.PeakInUseBytes, savedMax,
            timedSteps == 0 ? 0 : stepMsSum / timedSteps, regions, step);
    }

    /// <summary>
    /// A note when some regions keep more than asked (a dimension too short for the keep ratio keeps
    /// at least one position): the effective keep ratio per region size, or null when every region keeps what was asked.
    /// </summary>
    public static string? EffectiveKeepNote(IReadOnlyList<RegionReport> regions, double keep)
    {
        var above = regions.Where(r => r.KeepRatio > keep + 1e-9).ToList();
        if (above.Count == 0) return null;
        var kinds = above.GroupBy(r => (r.Kept, r.Size)).Select(g => string.Create(CultureInfo.InvariantCulture,
            $"{g.Key.Kept} of {g.Key.Size} positions (keep {(double)g.Key.Kept / g.Key.Size:0.###}) in {g.Count()} region(s), e.g. {g.First().Name}"));
        double mean = regions.Average(r => r.KeepRatio);
        return string.Create(CultureInfo.InvariantCulture,
            $"  note: keep {keep:0.###} rounds to no position in some regions, which keep at least one: {string.Join("; ", kinds)}. Effective keep ratio over the {regions.Count} regions: {mean:0.###}.");
    }

    /// <summary>
    /// Milliseconds per full-backprop training step (forward, backward, AdamW) of config <paramref name="modelName"/>
    /// on <paramref name="batch"/>, after one warm-up step: the rate a data loader must keep up with.
    /// </summary>
    public static double StepMilliseconds(string modelName, IVideoDataset data, VideoBatch batch, int steps, ulong seed = 1)
    {
        if (steps < 1) throw new ArgumentOutOfRangeException(nameof(steps), $"Trainer.StepMilliseconds: steps must be at least 1 (got {steps}).");
        using var model = CreateModel(modelName, data, data.ClipFrames, data.Transform.Height, data.Transform.Width, seed, batch.Clips.Device);
        if (model.NeedsCalibration)
            using (var inputs = model.InputOf(batch.Clips))
                model.Calibrate(inputs);
        using var optimizer = new AdamW(model.NamedParameters(), 1e-4f);
        var watch = new Stopwatch();
        for (int s = 0; s <= steps; s++)
        {
            if (s == 1) watch.Start();
            TrainStep(model, null, batch, s, 1, null);
            optimizer.Step();
            optimizer.ZeroGrad();
        }
        return watch.Elapsed.TotalMilliseconds / steps;
    }

    /// <summary>
    /// Forward and backward of one batch in <paramref name="microBatches"/> parts (gradients summed,
    /// each part's loss weighted by its share of the batch). Returns the batch loss and the most
    /// bytes a tape held. Everything the step allocates is freed when it returns or throws.
    /// </summary>
    static (double Loss, long Saved) TrainStep(VideoModel model, SbpPolicy? policy, VideoBatch batch, long step, int microBatches, List<RegionReport>? regions,
        OpProfile? profile = null, float labelSmoothing = 0f, DistributedRun? dist = null, DType? saveAs = null, DType precision = DType.Float32, GradScaler? scaler = null)
    {
        int n = batch.Size;
        dist?.BeforeStep();
        double total = 0;
        long saved = 0;
        int[]? labels = microBatches > 1 ? batch.Labels.ToIntArray() : null;
        int perSample = labels is null ? 0 : labels.Length / n;
        for (int part = 0, start = 0; part < microBatches; part++)
        {
            int count = (n - start) / (microBatches - part);
            using var scope = TensorScope.Begin();
            using var tape = Tape.Begin();
            using var packing = saveAs is { } packed ? Tape.SaveActivationsAs(packed) : default;
            if (profile is not null && part == 0)
            {
                tape.Profile = profile;
                profile.Start();
            }
            var clips = microBatches == 1 ? batch.Clips : Ops.Slice(batch.Clips, 0, start, count);
            var y = microBatches == 1 ? batch.Labels
                : Tensor.FromArray(labels![(start * perSample)..((start + count) * perSample)], new Shape([count, .. batch.Labels.Shape.Dims[1..]]), batch.Labels.Device);
            Tensor loss;
            using (Autocast.Begin(precision)) loss = Loss(model.Forward(Input(model, clips), policy, step), y, labelSmoothing);
            var weighted = microBatches == 1 ? loss : Ops.Mul(loss, (float)count / n);
            if (scaler is not null) weighted = scaler.ScaleLoss(weighted);
            saved = Math.Max(saved, tape.SavedBytes);
            if (regions is not null && part == 0) regions.AddRange(tape.Regions);
            if (part == microBatches - 1) dist?.Attach(tape);   // data parallel: average while the last micro-batch runs backward
            tape.Backward(weighted);
            if (part == microBatches - 1) dist?.Finish();
            total += loss.Item() * count / n;
            start += count;
        }
        return (total, saved);
    }

    /// <summary>
    /// metrics.jsonl of a run: a new file, or (resuming at <paramref name="resumeStep"/>) the old one without
    /// the records past that step (they are trained again), followed by a record of the resumption.
    /// </summary>
    static JsonLines OpenMetrics(string dir, long? resumeStep)
    {
        Directory.CreateDirectory(dir);
        var path = Path.Combine(dir, "metrics.jsonl");
        if (resumeStep is not { } at) return new JsonLines(path, append: false);
        var kept = File.Exists(path) ? File.ReadAllLines(path).Where(l => StepOf(l) is not { } s || s <= at).ToList() : [];
        File.WriteAllLines(path, kept);
        var lines = new JsonLines(path, append: true);
        lines.Write(new() { ["type"] = "resume", ["step"] = at });
        return lines;
    }

    /// <summary>The "step" of a metrics line (null for a line without one or not JSON).</summary>
    static long? StepOf(string line)
    {
        try
        {
            using var doc = JsonDocument.Parse(line);
            return doc.RootElement.TryGetProperty("step", out var s) && s.TryGetInt64(out long v) ? v : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
