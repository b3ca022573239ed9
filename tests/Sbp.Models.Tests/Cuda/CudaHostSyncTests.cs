using Sbp.Autograd;
using Sbp.CudaSim;
using Sbp.Engine.Tests.Support;
using Sbp.Models.Architectures;
using Sbp.Optim;
using Sbp.Rng;
using Sbp.Stochastic;
using Sbp.Tensors;

namespace Sbp.Models.Tests.Cuda;

/// <summary>
/// A training step on a GPU must never wait for the device except where the user reads a value: every host
/// synchronization stalls the launch queue (the GPU idles while the host catches up). On the simulated device,
/// which counts each synchronization with the op that caused it, a full SBP step (upload of the batch, forward,
/// cross-entropy, backward, gradient clipping, AdamW) waits for nothing until its loss is read, and uploads no
/// per-launch shape metadata (it travels in the launch).
/// </summary>
[Category("cuda-sim")]
public sealed class CudaHostSyncTests
{
    [TestCase("swin-nano", RegionMode.SparseCache)]
    [TestCase("swin-nano", RegionMode.Recompute)]
    [TestCase("det-nano", RegionMode.SparseCache)]
    public void A_training_step_waits_on_the_host_only_to_read_the_loss(string config, RegionMode mode)
    {
        var device = SimulatedCuda.CreateDevice($"cuda-sim sync {config} {mode}");
        using var model = ModelFactory.Create(config, new RandomSource(7), device);
        using var optimizer = new AdamW(model.NamedParameters(), learningRate: 1e-3f, weightDecay: 0.05f);
        var policy = new SbpPolicy(new KeepMaskPolicy(MaskKind.Strided, 0.5, Seed: 42), SbpPlacement.BlockOutput, mode);
        int[] shape = [2, .. model.SampleShape];
        var x = Rand.Uniform(21, Ref.Numel(shape));
        var labels = Rand.Ints(22, model.PerFrameLabels ? 2 * model.SampleShape[0] : 2, 0, model.NumClasses);

        Tensor Step(int step, TensorScope scope)
        {
            model.ZeroGrad();
            using var tape = Tape.Begin();
            var logits = model.Forward(Tensor.FromArray(x, new Shape(shape), device), policy, step);
            var flat = logits.Rank == 3 ? Ops.Reshape(logits, logits.Shape[0] * logits.Shape[1], logits.Shape[2]) : logits;
            var loss = Ops.CrossEntropy(flat, Tensor.FromArray(labels, new Shape(labels.Length), device));
            tape.Backward(loss);
            using (GradClip.Clip(model.NamedParameters(), 1f)) { }
            optimizer.Step();
            return scope.Keep(loss);
        }

        using (var warm = TensorScope.Begin()) Step(1, warm).Item();   // loads the modules and fills the pool's cache
        var transfers = SimulatedCuda.Transfers(device);
        int launchesBefore = SimulatedCuda.Launches(device).Values.Sum();
        transfers.Reset();
        using var scope = TensorScope.Begin();
        var loss = Step(2, scope);
        int launches = SimulatedCuda.Launches(device).Values.Sum() - launchesBefore;
        string what = $"{config} {mode}, {launches} launches: {transfers}";
        TestContext.Out.WriteLine(what);
        Assert.That(transfers.HostSyncs, Is.Empty, () => $"the step waited for the device before its loss was read: {what}");
        Assert.That(transfers.Uploads, Has.Count.LessThan(launches / 10), () => $"uploads per launch (shape metadata travels by value): {what}");
        float l = loss.Item();
        Assert.That(float.IsFinite(l), Is.True, "the loss");
        // Reading the loss reads the device's error block too (the targets and mask checks ran there): two copies, one wait.
        Assert.That(transfers.Downloads, Is.EqualTo(2), () => what);
        Assert.That(transfers.DownloadBytes, Is.EqualTo(4 + 16), () => what);
    }
}
