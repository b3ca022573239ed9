using Sbp.Autograd;
using Sbp.Rng;
using Sbp.Tensors;

namespace Sbp.Kernels.Tests.Cuda;

/// <summary>The same functional model code (Ops + autograd tape) on the simulated CUDA device and on the CPU.</summary>
public sealed class CudaModelCodeTests : CudaTest
{
    /// <summary>linear, GELU, linear, layer norm, softmax cross-entropy with a backward pass; returns the loss and the gradients.</summary>
    static (float Loss, float[] DW1, float[] DW2, float[] DX) Step(Device device)
    {
        using var scope = TensorScope.Begin();
        var x = Tensor.FromArray(Rand.Uniform(1, 6 * 8), new Shape(6, 8), device);
        var w1 = Tensor.FromArray(Rand.Uniform(2, 16 * 8, -0.4f, 0.4f), new Shape(16, 8), device);
        var b1 = Tensor.FromArray(Rand.Uniform(3, 16), new Shape(16), device);
        var w2 = Tensor.FromArray(Rand.Uniform(4, 5 * 16, -0.4f, 0.4f), new Shape(5, 16), device);
        var target = Tensor.FromArray(Rand.Ints(5, 6, 0, 5), new Shape(6), device);
        foreach (var t in new[] { x, w1, b1, w2 }) t.RequiresGrad = true;
        using var tape = Tape.Begin();
        var h = Ops.Gelu(Ops.Linear(x, w1, b1));
        var z = Ops.LayerNorm(Ops.Linear(h, w2), [5], null, null, 1e-5f);
        var loss = Ops.CrossEntropy(z, target, labelSmoothing: 0.1f);
        tape.Backward(loss);
        return (loss.Item(), w1.Grad!.ToArray(), w2.Grad!.ToArray(), x.Grad!.ToArray());
    }

    [Test]
    public void ATrainingStepGivesTheCpusLossAndGradients()
    {
        var cpu = Step(Cpu);
        var gpu = Step(Gpu);
        Assert.That(gpu.Loss, Is.EqualTo(cpu.Loss).Within(1e-5 * Math.Abs(cpu.Loss) + 1e-6));
        Support.Check.Close(cpu.DW1, gpu.DW1, 1e-4, 1e-5, "dW1");
        Support.Check.Close(cpu.DW2, gpu.DW2, 1e-4, 1e-5, "dW2");
        Support.Check.Close(cpu.DX, gpu.DX, 1e-4, 1e-5, "dx");
    }

    /// <summary>conv, batch norm, ReLU, max pool, dropout, average pool, permute + slice, a sum; loss and gradients.</summary>
    static (float Loss, float[] DW, float[] DGamma, float[] DX) ConvStep(Device device)
    {
        using var scope = TensorScope.Begin();
        var x = Tensor.FromArray(Rand.Uniform(6, 2 * 3 * 8 * 8), new Shape(2, 3, 8, 8), device);
        var w = Tensor.FromArray(Rand.Uniform(7, 4 * 3 * 3 * 3, -0.3f, 0.3f), new Shape(4, 3, 3, 3), device);
        var gamma = Tensor.FromArray(Rand.Positive(8, 4), new Shape(4), device);
        var beta = Tensor.FromArray(Rand.Uniform(9, 4), new Shape(4), device);
        foreach (var t in new[] { x, w, gamma, beta }) t.RequiresGrad = true;
        using var tape = Tape.Begin();
        var h = Ops.Conv2d(x, w, null, padding: [1, 1]);
        h = Ops.Relu(Ops.BatchNorm(h, gamma, beta, null, null, BatchNormMode.Train));
        h = Ops.MaxPool2d(h, [2, 2]);
        h = Ops.Dropout(h, 0.25f, new RandomSource(11));
        h = Ops.AvgPool2d(h, [2, 2], padding: [1, 1]);
        h = Ops.Slice(Ops.Permute(h, 0, 2, 3, 1), 1, 1, 2);
        var loss = Ops.Sum(Ops.Mul(h, h));
        tape.Backward(loss);
        return (loss.Item(), w.Grad!.ToArray(), gamma.Grad!.ToArray(), x.Grad!.ToArray());
    }

    [Test]
    public void AConvolutionalStepGivesTheCpusLossAndGradients()
    {
        var cpu = ConvStep(Cpu);
        var gpu = ConvStep(Gpu);
        Assert.That(gpu.Loss, Is.EqualTo(cpu.Loss).Within(1e-5 * Math.Abs(cpu.Loss) + 1e-6));
        Support.Check.Close(cpu.DW, gpu.DW, 1e-4, 1e-5, "dW");
        Support.Check.Close(cpu.DGamma, gpu.DGamma, 1e-4, 1e-5, "dgamma");
        Support.Check.Close(cpu.DX, gpu.DX, 1e-4, 1e-5, "dx");
    }
}
