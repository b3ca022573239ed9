using Sbp.PtxSim;
using Sbp.Tensors;

namespace Sbp.Kernels.Tests.Support;

/// <summary>
/// Base of kernel tests: each test gets a simulated GPU and its own CPU device (the reference,
/// through its backend) inside a <see cref="TensorScope"/>; afterwards the scope is disposed and the
/// CPU pool must be empty.
/// </summary>
public abstract class KernelTest
{
    TensorScope? _scope;

    protected Device Device { get; private set; } = null!;
    protected SimGpu Gpu { get; private set; } = null!;

    [SetUp]
    public void BeginKernelTest()
    {
        Device = Device.CreateCpu($"kernel test {TestContext.CurrentContext.Test.Name}");
        _scope = TensorScope.Begin();
        Gpu = new SimGpu();
    }

    [TearDown]
    public void EndKernelTest()
    {
        Gpu.Dispose();
        _scope?.Dispose();
        _scope = null;
        Assert.That(Device.Pool.InUseBytes, Is.EqualTo(0), "CPU reference tensors leaked.");
    }

    /// <summary>A Float32 tensor on the test's CPU device.</summary>
    protected Tensor T(float[] data, params int[] shape) => Tensor.FromArray(data, new Shape(shape), Device);

    /// <summary>An Int32 tensor on the test's CPU device.</summary>
    protected Tensor I(int[] data, params int[] shape) => Tensor.FromArray(data, new Shape(shape), Device);

    /// <summary>An uninitialized Float32 tensor on the test's CPU device.</summary>
    protected Tensor Empty(params int[] shape) => Tensor.Empty(new Shape(shape), Device);

    protected static KernelArg Ptr(ulong address) => KernelArg.Ptr(address);
    protected static KernelArg U32(long value) => KernelArg.U32(checked((uint)value));
    protected static KernelArg F32(float value) => KernelArg.F32(value);
    protected static KernelArg U64(ulong value) => KernelArg.U64(value);
}
