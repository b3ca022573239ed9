using Sbp.CudaSim;
using Sbp.Tensors;

namespace Sbp.Kernels.Tests.Cuda;

/// <summary>
/// Base of the CUDA backend tests: each test gets a fresh simulated CUDA device (the engine's
/// CudaBackend over simulated memory, the PTX simulator and reference cuBLAS/cuDNN) and its own CPU
/// device (the reference), inside a TensorScope; afterwards both pools must be empty.
/// With SBP_CUDA_TEST_DEVICE=cuda the same tests run on the real GPU (cuda:0) instead; the few
/// that inspect the simulator call <see cref="SimulatorOnly"/>.
/// </summary>
public abstract class CudaTest
{
    TensorScope? _scope;

    protected Device Cpu { get; private set; } = null!;
    protected Device Gpu { get; private set; } = null!;

    [SetUp]
    public void BeginCudaTest()
    {
        string name = TestContext.CurrentContext.Test.Name;
        Cpu = Device.CreateCpu($"cpu {name}");
        Gpu = OnRealGpu ? Sbp.Backends.Cuda.CudaDevices.Get(0) : SimulatedCuda.CreateDevice($"cuda-sim {name}");
        _scope = TensorScope.Begin();
    }

    [TearDown]
    public void EndCudaTest()
    {
        _scope?.Dispose();
        _scope = null;
        Assert.That(Cpu.Pool.InUseBytes, Is.EqualTo(0), "CPU tensors leaked.");
        Assert.That(Gpu.Pool.InUseBytes, Is.EqualTo(0), "CUDA tensors (or backend workspace) leaked.");
    }

    protected static bool OnRealGpu => Environment.GetEnvironmentVariable("SBP_CUDA_TEST_DEVICE") == "cuda";

    /// <summary>Skips a test that inspects the simulated device (launch or library-call counts) on a real GPU.</summary>
    protected static void SimulatorOnly()
    {
        if (OnRealGpu) Assert.Ignore("inspects the simulated device");
    }

    /// <summary>The same Float32 data on both devices.</summary>
    protected (Tensor Cpu, Tensor Gpu) Pair(float[] data, params int[] shape) =>
        (Tensor.FromArray(data, new Shape(shape), Cpu), Tensor.FromArray(data, new Shape(shape), Gpu));

    protected (Tensor Cpu, Tensor Gpu) PairInt(int[] data, params int[] shape) =>
        (Tensor.FromArray(data, new Shape(shape), Cpu), Tensor.FromArray(data, new Shape(shape), Gpu));

    /// <summary>Outputs on both devices, the CUDA one poisoned with NaN so an element a kernel forgets shows.</summary>
    protected (Tensor Cpu, Tensor Gpu) Out(params int[] shape)
    {
        var g = Tensor.Full(new Shape(shape), float.NaN, Gpu);
        return (Tensor.Empty(new Shape(shape), Cpu), g);
    }

    protected static void Close((Tensor Cpu, Tensor Gpu) t, double rtol, double atol, string what) =>
        Support.Check.Close(t.Cpu.ToArray(), t.Gpu.ToArray(), rtol, atol, what);

    protected static void Exact((Tensor Cpu, Tensor Gpu) t, string what) =>
        Support.Check.Exact(t.Cpu.ToArray(), t.Gpu.ToArray(), what);
}
