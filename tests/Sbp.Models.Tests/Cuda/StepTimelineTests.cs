using Sbp.Autograd;
using Sbp.CudaSim;
using Sbp.Engine.Tests.Support;
using Sbp.KernelProfile;
using Sbp.Models.Architectures;
using Sbp.Optim;
using Sbp.Rng;
using Sbp.Stochastic;
using Sbp.Tensors;

namespace Sbp.Models.Tests.Cuda;

/// <summary>
/// The modeled GPU timeline (`sbp kernels model`): the recording device must issue exactly what the simulated device
/// runs for the same step (so a full-size step recorded without running is the real step), and the model's arithmetic
/// must hold on cases worked by hand.
/// </summary>
[Category("cuda-sim")]
public sealed class StepTimelineTests
{
    static void Step(VideoModel model, Device device, SbpPolicy policy, Action<string>? phase = null, OpProfile? profile = null)
    {
        int[] shape = [2, .. model.SampleShape];
        using var optimizer = new AdamW(model.NamedParameters(), learningRate: 1e-3f, weightDecay: 0.05f);
        using var scope = TensorScope.Begin();
        var x = Tensor.FromArray(Rand.Uniform(21, Ref.Numel(shape)), new Shape(shape), device);
        var y = Tensor.FromArray(Rand.Ints(22, 2, 0, model.NumClasses), new Shape(2), device);
        using (var tape = Tape.Begin())
        {
            tape.Profile = profile;
            phase?.Invoke("forward");
            var loss = Ops.CrossEntropy(model.Forward(x, policy, 3), y);
            phase?.Invoke("backward");
            tape.Backward(loss);
        }
        phase?.Invoke("optimizer");
        using (GradClip.Clip(model.NamedParameters(), 1f)) { }
        optimizer.Step();
    }

    [TestCase(RegionMode.SparseCache)]
    [TestCase(RegionMode.Recompute)]
    public void The_recording_device_issues_what_the_simulated_device_runs(RegionMode mode)
    {
        SbpPolicy Policy() => new(new KeepMaskPolicy(MaskKind.Strided, 0.5, Seed: 42), SbpPlacement.BlockOutput, mode);
        var simulated = SimulatedCuda.CreateDevice($"cuda-sim timeline {mode}");
        Dictionary<string, int> ran;
        using (var model = ModelFactory.Create("swin-nano", new RandomSource(7), simulated))
        {
            Step(model, simulated, Policy());   // the first step learns each region's hints (RegionHints); the steps after it are alike
            var before = SimulatedCuda.Launches(simulated).ToDictionary();
            Step(model, simulated, Policy());
            ran = SimulatedCuda.Launches(simulated).Select(kv => (kv.Key, Count: kv.Value - before.GetValueOrDefault(kv.Key)))
                .Where(e => e.Count > 0).ToDictionary(e => e.Key, e => e.Count);
        }

        var recorder = new TimelineRecorder($"cuda-model timeline {mode}");
        var sampler = new LaunchSampler();
        OpProfile ops;
        using (var model = ModelFactory.Create("swin-nano", new RandomSource(7), recorder.Device))
        {
            Step(model, recorder.Device, Policy());
            recorder.Start();
            ops = recorder.ModeledProfile(GpuSpec.H100Sxm, sampler);
            Step(model, recorder.Device, Policy(), p => recorder.Phase = p, ops);
            recorder.Stop();
        }
        var recorded = recorder.Launches.GroupBy(l => l.Entry).ToDictionary(g => g.Key, g => g.Count());
        Assert.That(recorded, Is.EquivalentTo(ran), "kernel launches by entry: recorded vs run on the simulated device");
        Assert.That(recorder.HostSyncs, Is.Zero);
        Assert.That(recorder.Launches.Select(l => l.Phase).Distinct(), Is.EquivalentTo(new[] { "forward", "backward", "optimizer" }));

        var step = StepTimeline.Model(recorder, GpuSpec.H100Sxm, sampler);
        // Per tape op: the forward rows add up to the forward phase (every forward launch belongs to an op).
        double opsForward = ops.Rows().Where(r => r.Phase == OpProfile.Phase.Forward).Sum(r => r.Milliseconds);
        Assert.That(opsForward, Is.EqualTo(step.PhaseSeconds("forward") * 1e3).Within(1).Percent, "per-op forward vs the phase");
        Assert.That(step.Items, Has.Count.EqualTo(recorder.Launches.Count + recorder.Calls.Count));
        Assert.That(step.Items.All(i => i.Seconds >= GpuSpec.H100Sxm.LaunchMicroseconds * 1e-6 && double.IsFinite(i.Seconds)), Is.True);
        Assert.That(step.Items.All(i => i.RooflineSeconds <= i.Seconds), Is.True, "no item beats its own roofline");
    }

    [Test]
    public void A_large_elementwise_add_is_modeled_at_full_bandwidth()
    {
        // add_f32 over 2^24 elements, 4096 blocks of 256: 12 bytes per element (two loads, a store), coalesced.
        const long n = 1 << 24;
        var launch = new RecordedLaunch("add_f32", 4096, 256, 0, [("Int64", 0), ("Int64", 0), ("Int64", 0), ("Int32", (ulong)n)], "add", "forward");
        var cost = new LaunchSampler().Cost(launch);
        Assert.That(cost.UsefulBytes, Is.EqualTo(12.0 * n).Within(0.1).Percent);
        Assert.That(cost.SectorBytes, Is.EqualTo(12.0 * n).Within(1).Percent, "coalesced: every sector byte is used");

        var gpu = GpuSpec.H100Sxm;
        double expected = 12.0 * n / gpu.HbmBytesPerSecond + gpu.LaunchMicroseconds * 1e-6;
        var modeled = ModelOne(launch, gpu);
        Assert.That(modeled.Seconds, Is.EqualTo(expected).Within(1).Percent);
        Assert.That(modeled.RooflineSeconds / (modeled.Seconds - gpu.LaunchMicroseconds * 1e-6), Is.EqualTo(1).Within(1).Percent, "at its roofline");
        // The same work on 8 blocks: 8 of 132 SMs, 8 warps each (half of what hides latency): far from it.
        var narrow = ModelOne(launch with { Grid = 8 }, gpu);
        Assert.That(narrow.Seconds - gpu.LaunchMicroseconds * 1e-6, Is.EqualTo(12.0 * n / (gpu.HbmBytesPerSecond * 8 / 132 * 0.5)).Within(1).Percent);
    }

    [Test]
    public void A_square_gemm_is_modeled_from_its_flops_and_tile_waves()
    {
        // 4096^3: 1024 output tiles of 128 x 128 on 132 SMs: 8 waves at 1024 / 1056 efficiency, 80% of the FP32 peak.
        var gpu = GpuSpec.H100Sxm;
        var call = new RecordedCall("cublasSgemm", 2.0 * 4096 * 4096 * 4096, 3 * 4.0 * 4096 * 4096, 1024, false, "", "matmul", "forward", 4096);
        double expected = 2.0 * 4096 * 4096 * 4096 / (gpu.Fp32Flops * gpu.LibraryEfficiency * (1024.0 / 1056)) + gpu.LaunchMicroseconds * 1e-6;
        Assert.That(ModelOne(call, gpu).Seconds, Is.EqualTo(expected).Within(1e-9));
        // A weight gradient: 96 x 96 outputs (1 tile) over K = 200704 rows: split along K over every SM.
        var grad = new RecordedCall("cublasSgemm", 2.0 * 96 * 96 * 200704, 4.0 * (2 * 96 * 200704 + 96 * 96), 1, false, "", "linear.backward", "backward", 200704);
        double flops = 2.0 * 96 * 96 * 200704;
        Assert.That(ModelOne(grad, gpu).Seconds, Is.EqualTo(Math.Max(flops / (gpu.Fp32Flops * gpu.LibraryEfficiency), grad.Bytes / gpu.HbmBytesPerSecond)
            + gpu.LaunchMicroseconds * 1e-6).Within(1e-9));
    }

    static ModeledItem ModelOne(object item, GpuSpec gpu) => StepTimeline.ModelItems(
        item is RecordedLaunch l ? [l] : [], item is RecordedCall c ? [c] : [], gpu, new LaunchSampler())[0];
}
