using Sbp.Tensors;

namespace Sbp.Engine.Tests.Support;

/// <summary>
/// Base of op tests: each test gets its own CPU device and an open <see cref="TensorScope"/>;
/// after the test the scope is disposed and the device's pool must be empty (nothing leaked).
/// </summary>
public abstract class DeviceTest
{
    TensorScope? _scope;

    protected Device Device { get; private set; } = null!;

    [SetUp]
    public void BeginDeviceTest()
    {
        Device = Device.CreateCpu($"test {TestContext.CurrentContext.Test.Name}");
        _scope = TensorScope.Begin();
    }

    [TearDown]
    public void EndDeviceTest()
    {
        _scope?.Dispose();
        _scope = null;
        Assert.That(Device.Pool.InUseBytes, Is.EqualTo(0), $"{Device.Pool.InUseBytes} bytes still in use on the test's device after its scope ended (a leak).");
    }

    /// <summary>A Float32 tensor on the test's device.</summary>
    protected Tensor T(float[] data, params int[] shape) => Tensor.FromArray(data, new Shape(shape), Device);

    /// <summary>A 1-D Int32 index tensor on the test's device.</summary>
    protected Tensor Idx(params int[] indices) => Tensor.FromArray(indices, new Shape(indices.Length), Device);
}
