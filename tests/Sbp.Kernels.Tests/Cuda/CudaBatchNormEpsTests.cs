using Sbp.Tensors;

namespace Sbp.Kernels.Tests.Cuda;

/// <summary>
/// cuDNN wants the same epsilon in batch norm's forward and backward; the simulated cuDNN checks it, so a backward
/// that passes a fixed epsilon instead of the layer's fails here as it would be wrong on a GPU.
/// </summary>
public sealed class CudaBatchNormEpsTests : CudaTest
{
    [Test]
    public void ABackwardWithAnotherEpsilonThanItsForwardIsRefusedNamingBoth()
    {
        SimulatorOnly();
        var x = Tensor.FromArray(Rand.Uniform(1, 2 * 3 * 4), new Shape(2, 3, 4), Gpu);
        var (y, mean, inv) = (Tensor.Empty(x.Shape, Gpu), Tensor.Empty(new Shape(3), Gpu), Tensor.Empty(new Shape(3), Gpu));
        Gpu.Backend.BatchNormTrainForward(x, null, null, null, null, 0.1f, 0.1f, y, mean, inv);
        var dx = Tensor.Empty(x.Shape, Gpu);
        var e = Assert.Throws<Sbp.Backends.Cuda.CudaException>(() => Gpu.Backend.BatchNormBackward(y, x, null, mean, inv, dx, null, null, 1e-5f))!;
        Assert.That(e.Message, Does.Contain("epsilon 1E-05").And.Contain("0.1").And.Contain("forward"));
        Gpu.Backend.BatchNormBackward(y, x, null, mean, inv, dx, null, null, 0.1f);   // the forward's: accepted
    }
}
