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
/// Whole SBP training steps on the simulated CUDA device (the engine's real CudaBackend over the
/// PTX simulator and reference cuBLAS / cuDNN) against the CPU backend, from the same weights and
/// inputs: the loss, every parameter gradient and (for Video Swin) the weights after one AdamW step
/// must agree to float tolerance. The nano configs at batch 2 keep all six cases near 2 s on 2 cores
/// (the simulator is slow on larger shapes).
/// </summary>
[Category("cuda-sim")]
public sealed class CudaTrainingStepTests
{
    Device _cpu = null!;
    Device _gpu = null!;

    [SetUp]
    public void BeginStepTest()
    {
        string name = TestContext.CurrentContext.Test.Name;
        _cpu = Device.CreateCpu($"cpu {name}");
        _gpu = OnRealGpu ? Sbp.Backends.Cuda.CudaDevices.Get(0) : SimulatedCuda.CreateDevice($"cuda-sim {name}");
    }

    [TearDown]
    public void EndStepTest()
    {
        Assert.That(_cpu.Pool.InUseBytes, Is.EqualTo(0), "CPU tensors leaked.");
        Assert.That(_gpu.Pool.InUseBytes, Is.EqualTo(0), () => "CUDA tensors (or backend workspace) leaked: " +
            string.Join("; ", _gpu.Pool.Snapshot().Take(8).Select(b => $"{b.Bytes} B {b.Category} '{b.Label}' ({b.References} refs)")));
    }

    /// <summary>SBP_CUDA_TEST_DEVICE=cuda runs the same steps on cuda:0 (as tests/Sbp.Kernels.Tests/Cuda does); the launch counts are then not checked.</summary>
    static bool OnRealGpu => Environment.GetEnvironmentVariable("SBP_CUDA_TEST_DEVICE") == "cuda";

    /// <summary>What one step produced, copied to the host: loss, gradients and (after the optimizer) the parameters, by name.</summary>
    sealed record StepResult(float Loss, Dictionary<string, float[]> Grads, Dictionary<string, float[]>? Updated, int Regions);

    /// <summary>The same model (weights copied bit for bit from the CPU one) on both devices.</summary>
    (VideoModel Cpu, VideoModel Gpu) Models(string config)
    {
        var cpu = ModelFactory.Create(config, new RandomSource(7), _cpu);
        var gpu = ModelFactory.Create(config, new RandomSource(7), _gpu);
        gpu.LoadStateDict(cpu.StateDict());
        return (cpu, gpu);
    }

    /// <summary>
    /// Forward with <paramref name="policy"/> (masks of step 3), cross-entropy (per frame for the
    /// detector), backward; then one AdamW step when <paramref name="adamW"/>.
    /// </summary>
    static StepResult Step(VideoModel model, float[] x, int[] shape, int[] labels, SbpPolicy policy, bool adamW)
    {
        var device = model.Device;
        model.ZeroGrad();
        float loss;
        int regions;
        using (var scope = TensorScope.Begin())
        using (var tape = Tape.Begin())
        {
            var input = Tensor.FromArray(x, new Shape(shape), device);
            var logits = model.Forward(input, policy, 3);
            var flat = logits.Rank == 3 ? Ops.Reshape(logits, logits.Shape[0] * logits.Shape[1], logits.Shape[2]) : logits;
            var l = Ops.CrossEntropy(flat, Tensor.FromArray(labels, new Shape(labels.Length), device));
            regions = tape.Regions.Count;
            tape.Backward(l);
            loss = l.Item();
        }
        var grads = model.NamedParameters().ToDictionary(p => p.Name, p => p.Tensor.Grad?.ToArray() ?? new float[p.Tensor.Numel]);
        Dictionary<string, float[]>? updated = null;
        if (adamW)
        {
            // eps 1e-4 rather than 1e-8: the first Adam step is lr * g / (|g| + eps), which for
            // near-zero gradients turns float noise into a full-size step; a larger eps keeps the
            // update a smooth function of the gradient while still exercising adamw_f32.
            using var optimizer = new AdamW(model.NamedParameters(), learningRate: 1e-3f, eps: 1e-4f, weightDecay: 0.05f);
            optimizer.Step();
            updated = model.NamedParameters().ToDictionary(p => p.Name, p => p.Tensor.ToArray());
        }
        model.ZeroGrad();
        return new StepResult(loss, grads, updated, regions);
    }

    static void AssertClose(string what, float[] actual, float[] expected, double rtol, double atol)
    {
        Assert.That(actual, Has.Length.EqualTo(expected.Length), $"{what}: lengths differ.");
        int bad = -1;
        double worst = 0;
        for (int i = 0; i < actual.Length; i++)
        {
            double diff = Math.Abs(actual[i] - expected[i]);
            if (!(diff <= atol + rtol * Math.Abs(expected[i])) && (bad < 0 || diff > worst)) { bad = i; worst = diff; }
        }
        Assert.That(bad, Is.EqualTo(-1), () => $"{what}: element {bad} is {actual[bad]} on CUDA but {expected[bad]} on the CPU (|diff| {worst:G3}; rtol {rtol}, atol {atol}).");
    }

    static void AssertSameStep(string what, StepResult gpu, StepResult cpu)
    {
        Assert.That(gpu.Regions, Is.EqualTo(cpu.Regions).And.GreaterThan(0), $"{what}: SBP regions recorded (CUDA vs CPU).");
        Assert.That(gpu.Loss, Is.EqualTo(cpu.Loss).Within(1e-5 * Math.Max(1, Math.Abs(cpu.Loss))), $"{what}: loss.");
        Assert.That(gpu.Grads.Keys, Is.EquivalentTo(cpu.Grads.Keys), $"{what}: parameter sets differ.");
        double largest = cpu.Grads.Values.SelectMany(g => g).Max(v => Math.Abs(v));
        foreach (var (name, g) in cpu.Grads)
            AssertClose($"{what}: gradient of {name}", gpu.Grads[name], g, 1e-3, 1e-5 * Math.Max(largest, 1e-3));
        Assert.That(cpu.Grads.Values.Any(g => g.Any(v => v != 0)), Is.True, $"{what}: every gradient is zero (the step trained nothing).");
        if (cpu.Updated is null) return;
        foreach (var (name, w) in cpu.Updated)
            AssertClose($"{what}: weight {name} after AdamW", gpu.Updated![name], w, 1e-5, 2e-6);
    }

    void AssertRanOnCuda(string what)
    {
        if (OnRealGpu) return;
        var launches = SimulatedCuda.Launches(_gpu);
        var calls = SimulatedCuda.LibraryCalls(_gpu);
        Assert.That(launches.Values.Sum(), Is.GreaterThan(0), $"{what}: no kernel ran on the simulated device.");
        Assert.That(calls.Keys.Any(k => k.StartsWith("cublas", StringComparison.Ordinal)), Is.True, $"{what}: no cuBLAS call on the simulated device.");
    }

    static (float[] X, int[] Shape, int[] Labels) Batch(VideoModel model, int batch, bool perFrame)
    {
        int[] shape = [batch, .. model.SampleShape];
        var x = Rand.Uniform(21, Ref.Numel(shape));
        int labelCount = perFrame ? batch * model.SampleShape[0] : batch;
        return (x, shape, Rand.Ints(22, labelCount, 0, model.NumClasses));
    }

    [TestCase(RegionMode.SparseCache)]
    [TestCase(RegionMode.Recompute)]
    public void Swin_nano_sbp_training_step_matches_the_cpu(RegionMode mode)
    {
        var (cpuModel, gpuModel) = Models("swin-nano");
        using (cpuModel)
        using (gpuModel)
        {
            var policy = new SbpPolicy(new KeepMaskPolicy(MaskKind.Strided, 0.5, Seed: 42), SbpPlacement.BlockOutput, mode);
            var (x, shape, labels) = Batch(cpuModel, 2, perFrame: false);
            var cpu = Step(cpuModel, x, shape, labels, policy, adamW: true);
            var gpu = Step(gpuModel, x, shape, labels, policy, adamW: true);
            AssertSameStep($"swin-nano {mode}", gpu, cpu);
            AssertRanOnCuda($"swin-nano {mode}");
            if (!OnRealGpu) Assert.That(SimulatedCuda.Launches(_gpu).Keys, Does.Contain("adamw_f32"), "the AdamW step did not run its CUDA kernel.");
        }
    }

    [TestCase("vit-nano", SbpPlacement.BranchOutput, MaskKind.Grid, RegionMode.SparseCache)]
    [TestCase("vit-nano", SbpPlacement.BranchOutput, MaskKind.Random, RegionMode.Recompute)]
    [TestCase("det-nano", SbpPlacement.BlockOutput, MaskKind.Strided, RegionMode.SparseCache)]
    // A Recompute region whose input needs no gradient (the frames entering the detector's stem): the
    // re-run's input gradient must be freed (this case once leaked it).
    [TestCase("det-nano", SbpPlacement.BlockOutput, MaskKind.Strided, RegionMode.Recompute)]
    public void Sbp_forward_and_backward_matches_the_cpu(string config, SbpPlacement placement, MaskKind kind, RegionMode mode)
    {
        var (cpuModel, gpuModel) = Models(config);
        using (cpuModel)
        using (gpuModel)
        {
            var policy = new SbpPolicy(new KeepMaskPolicy(kind, 0.5, Seed: 42), placement, mode);
            var (x, shape, labels) = Batch(cpuModel, 2, perFrame: cpuModel.PerFrameLabels);
            var cpu = Step(cpuModel, x, shape, labels, policy, adamW: false);
            var gpu = Step(gpuModel, x, shape, labels, policy, adamW: false);
            AssertSameStep($"{config} {kind} {mode}", gpu, cpu);
            AssertRanOnCuda(config);
        }
    }
}
