// Fine-tuning with Stochastic Backpropagation and checkpoints, on the built-in synthetic action data:
// 1. train an R(2+1)D model (r21d-micro) on 4 motion classes (the Trainer, full backprop; its checkpoint is the "pretrained" model);
// 2. load those weights into a fresh model and fine-tune it on harder clips (more noise, slower motion) with SBP at
//    keep 0.5 in our own loop, saving a checkpoint (model, optimizer, step) every few steps;
// 3. resume from the last checkpoint as a crash would, and report held-out accuracy.
//   dotnet run -- [output folder, default finetune-run]
using Sbp;
using Sbp.Autograd;
using Sbp.IO;
using Sbp.Models.Architectures;
using Sbp.Models.Data;
using Sbp.Models.Training;
using Sbp.Optim;
using Sbp.Rng;
using Sbp.Stochastic;
using Sbp.Tensors;

string output = args.Length > 0 ? args[0] : "finetune-run";
var device = Device.Cpu;
DatasetSpec Data(float noise, float speed) => new() { Source = "synthetic-actions", Classes = 4, Frames = 8, Height = 32, Width = 32, TrainCount = 256, ValCount = 64, Noise = noise, Speed = speed };

// 1. Pretraining: the Trainer writes metrics.jsonl and checkpoint.safetensors into its output folder.
var easy = Data(noise: 0.05f, speed: 1f);
var pretrainConfig = new TrainConfig { Model = "r21d-micro", Epochs = 4, BatchSize = 16, Workers = 1, OutputDir = Path.Combine(output, "pretrain") };
var pretrained = new Trainer(pretrainConfig, device).Run(DatasetCatalog.Open(easy, DataSplit.Train), DatasetCatalog.Open(easy, DataSplit.Validation));
Console.WriteLine($"pretrained: top-1 {pretrained.Epochs[^1].Top1:P1} on the easy clips");

// 2. Fine-tuning on harder clips with SBP (keep 0.5 of the frames in backward).
var hard = Data(noise: 0.15f, speed: 0.7f);
var train = DatasetCatalog.Open(hard, DataSplit.Train);
var val = DatasetCatalog.Open(hard, DataSplit.Validation);
string checkpoint = Path.Combine(output, "finetune.safetensors");
using (var model = CreateModel())
{
    // The pretrained weights only (strict: every tensor must match); the optimizer starts fresh.
    Checkpoint.Load(Path.Combine(pretrainConfig.OutputDir!, "checkpoint.safetensors"), model.StateDict(), optimizer: null);
    Console.WriteLine($"fine-tune from the pretrained weights: top-1 {Accuracy(model, val):P1} on the hard clips before");
    using var optimizer = new AdamW(model.NamedParameters(), learningRate: 1e-3f);
    long step = Train(model, optimizer, train, fromStep: 0, steps: 16, checkpointEvery: 8);
    Console.WriteLine($"  {step} steps, checkpoint at step {step}: {checkpoint}");
}

// 3. A fresh process would do this: rebuild, load model and optimizer state and the step, and go on.
using (var model = CreateModel())
{
    using var optimizer = new AdamW(model.NamedParameters(), learningRate: 1e-3f);
    var info = Checkpoint.Load(checkpoint, model.StateDict(), optimizer);
    long step = Train(model, optimizer, train, fromStep: info.Step, steps: 16, checkpointEvery: 8);
    Console.WriteLine($"resumed at step {info.Step}, now at step {step}: top-1 {Accuracy(model, val):P1} on the hard clips");
}

VideoModel CreateModel() =>
    ModelFactory.Create("r21d-micro", new RandomSource(1).Split("model"), device, numClasses: 4, frames: 8, height: 32, width: 32);

long Train(VideoModel model, AdamW optimizer, IVideoDataset data, long fromStep, int steps, int checkpointEvery)
{
    var sbp = new SbpPolicy(new KeepMaskPolicy(model.DefaultMaskKind(0.5), KeepRatio: 0.5, Seed: 3), model.SbpPlacement);
    var loader = new VideoLoader(data, new VideoLoaderOptions { BatchSize = 16, Seed = 2, Workers = 1 }, device);
    long step = fromStep;
    for (int epoch = (int)(fromStep / loader.BatchesPerEpoch); step < fromStep + steps; epoch++)
        foreach (var batch in loader.Epoch(epoch).Skip(epoch == fromStep / loader.BatchesPerEpoch ? (int)(fromStep % loader.BatchesPerEpoch) : 0))
        {
            using (batch)
            using (var scope = TensorScope.Begin())
            using (var tape = Tape.Begin())
            {
                var logits = model.Forward(model.InputOf(batch.Clips), sbp, step);
                var loss = Trainer.Loss(logits, batch.Labels);
                Console.WriteLine($"  step {step + 1}: loss {loss.Item():F4}, held for backward {tape.SavedBytes:N0} B");
                tape.Backward(loss);
            }
            optimizer.Step();
            optimizer.ZeroGrad();
            step++;
            if (step % checkpointEvery == 0) Checkpoint.Save(checkpoint, model.StateDict(), optimizer, new CheckpointInfo(step, step));
            if (step >= fromStep + steps) break;
        }
    return step;
}

double Accuracy(VideoModel model, IVideoDataset data)
{
    var loader = new VideoLoader(data, new VideoLoaderOptions { BatchSize = 16, Train = false, Workers = 1 }, device);
    int right = 0, total = 0;
    model.Eval();                                   // batch norm on its running statistics
    using var noGrad = Tape.NoGrad();
    foreach (var batch in loader.Epoch(0))
        using (batch)
        using (TensorScope.Begin())
        {
            var scores = model.Forward(model.InputOf(batch.Clips), null, 0).ToArray();
            var labels = batch.Labels.ToIntArray();
            int classes = scores.Length / labels.Length;
            for (int i = 0; i < labels.Length; i++, total++)
                if (Enumerable.Range(0, classes).MaxBy(c => scores[i * classes + c]) == labels[i]) right++;
        }
    model.Train();
    return (double)right / total;
}
