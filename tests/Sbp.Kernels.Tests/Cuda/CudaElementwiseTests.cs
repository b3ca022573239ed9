using Sbp.Backends;
using Sbp.Backends.Cuda;
using Sbp.CudaSim;
using Sbp.Tensors;

namespace Sbp.Kernels.Tests.Cuda;

/// <summary>CudaBackend copies, fills, broadcasts, binary / unary / activation ops against the CPU backend.</summary>
public sealed class CudaElementwiseTests : CudaTest
{
    [Test]
    public void CopiesRoundTripAndFill()
    {
        var data = Rand.Uniform(1, 37);
        var (_, g) = Pair(data, 37);
        Assert.That(g.ToArray(), Is.EqualTo(data));
        Assert.That(g.Backend, Is.InstanceOf<CudaBackend>());
        var f = Tensor.Full(new Shape(5, 3), 2.5f, Gpu);
        Assert.That(f.ToArray(), Is.All.EqualTo(2.5f));
        var ints = Tensor.FromArray([3, -1, 7], new Shape(3), Gpu);
        Assert.That(ints.ToIntArray(), Is.EqualTo(new[] { 3, -1, 7 }));
    }

    [TestCase(new[] { 4, 1, 5 }, new[] { 4, 3, 5 })]
    [TestCase(new[] { 5 }, new[] { 2, 3, 5 })]
    [TestCase(new[] { 1 }, new[] { 7 })]
    [TestCase(new[] { 3, 4 }, new[] { 3, 4 })]
    public void CopyBroadcasts(int[] from, int[] to)
    {
        var x = Pair(Rand.Uniform(2, (int)new Shape(from).Numel), from);
        var y = Out(to);
        Cpu.Backend.Copy(x.Cpu, y.Cpu);
        Gpu.Backend.Copy(x.Gpu, y.Gpu);
        Exact(y, "Copy");
    }

    static readonly object[] BinaryCases =
    [
        new object[] { BinaryOp.Add, new[] { 3, 4 }, new[] { 3, 4 } },
        new object[] { BinaryOp.Mul, new[] { 3, 4 }, new[] { 3, 4 } },
        new object[] { BinaryOp.Sub, new[] { 2, 3, 4 }, new[] { 4 } },
        new object[] { BinaryOp.Div, new[] { 2, 1, 4 }, new[] { 3, 1 } },
        new object[] { BinaryOp.Add, new[] { 1 }, new[] { 5, 2 } },
        new object[] { BinaryOp.Mul, new[] { 6, 1 }, new[] { 1, 7 } },
        new object[] { BinaryOp.Equal, new[] { 4, 5 }, new[] { 4, 5 } },
    ];

    [TestCaseSource(nameof(BinaryCases))]
    public void BinaryMatchesCpu(BinaryOp op, int[] sa, int[] sb)
    {
        var shape = Shape.Broadcast(new Shape(sa), new Shape(sb));
        var av = Rand.AwayFromZero(3, (int)new Shape(sa).Numel);
        var bv = Rand.AwayFromZero(4, (int)new Shape(sb).Numel);
        if (op == BinaryOp.Equal) for (int i = 0; i < bv.Length; i += 3) bv[i] = av[i];
        var a = Pair(av, sa);
        var b = Pair(bv, sb);
        var c = Out(shape.ToArray());
        Cpu.Backend.Binary(op, a.Cpu, b.Cpu, c.Cpu);
        Gpu.Backend.Binary(op, a.Gpu, b.Gpu, c.Gpu);
        Close(c, 1e-6, 0, $"Binary {op}");
    }

    [Test]
    public void PowMatchesCpuForPositiveBasesAndIntegerExponentsOfNegatives()
    {
        float[] av = [0.5f, 2f, 3.5f, -2f, -1.5f, -3f, 0f, 4f];
        float[] bv = [1.5f, -0.5f, 2f, 3f, 2f, -1f, 2f, 0f];
        var a = Pair(av, 8);
        var b = Pair(bv, 8);
        var c = Out(8);
        Cpu.Backend.Binary(BinaryOp.Pow, a.Cpu, b.Cpu, c.Cpu);
        Gpu.Backend.Binary(BinaryOp.Pow, a.Gpu, b.Gpu, c.Gpu);
        Close(c, 1e-5, 1e-7, "Pow");
        var nan = Pair([-2f], 1);
        var half = Pair([0.5f], 1);
        var r = Out(1);
        Gpu.Backend.Binary(BinaryOp.Pow, nan.Gpu, half.Gpu, r.Gpu);
        Assert.That(r.Gpu.ToArray()[0], Is.NaN, "a negative base with a non-integer exponent");
    }

    [TestCase(UnaryOp.Neg, 0f)]
    [TestCase(UnaryOp.Exp, 0f)]
    [TestCase(UnaryOp.Log, 0f)]
    [TestCase(UnaryOp.Sqrt, 0f)]
    [TestCase(UnaryOp.Relu, 0f)]
    [TestCase(UnaryOp.Gelu, 0f)]
    [TestCase(UnaryOp.GeluTanh, 0f)]
    [TestCase(UnaryOp.AddScalar, 1.5f)]
    [TestCase(UnaryOp.MulScalar, -2f)]
    [TestCase(UnaryOp.RSubScalar, 3f)]
    [TestCase(UnaryOp.RDivScalar, 2f)]
    [TestCase(UnaryOp.PowScalar, 2.5f)]
    [TestCase(UnaryOp.PowScalar, 3f)]
    public void UnaryMatchesCpu(UnaryOp op, float alpha)
    {
        bool positive = op is UnaryOp.Log or UnaryOp.Sqrt or UnaryOp.PowScalar && alpha != 3f;
        var xv = positive ? Rand.Positive(5, 300, 0.1f, 4f) : Rand.AwayFromZero(5, 300, 0.05f, 3f);
        var x = Pair(xv, 300);
        var y = Out(300);
        Cpu.Backend.Unary(op, x.Cpu, y.Cpu, alpha);
        Gpu.Backend.Unary(op, x.Gpu, y.Gpu, alpha);
        // The CPU's vector GELU takes erf from a rational fit (absolute error about 2e-7, no exp); the GPU from ex2.approx.
        // Log is lg2.approx times ln 2, and lg2.approx's error near x = 1 is absolute, up to 2^-22 on [0.5, 2] (CUDA guide,
        // __log2f): 2^-22 ln 2 = 1.65e-7, so atol 2e-7.
        Close(y, 2e-6, op switch { UnaryOp.Gelu => 1e-6, UnaryOp.Log => 2e-7, _ => 1e-7 }, $"Unary {op}");
    }

    [TestCase(UnaryOp.Relu)]
    [TestCase(UnaryOp.Gelu)]
    [TestCase(UnaryOp.GeluTanh)]
    public void ActivationBackwardMatchesCpu(UnaryOp op)
    {
        var x = Pair(Rand.Uniform(6, 257, -3f, 3f), 257);
        var dy = Pair(Rand.Uniform(7, 257), 257);
        var dx = Out(257);
        Cpu.Backend.ActivationBackward(op, x.Cpu, dy.Cpu, dx.Cpu);
        Gpu.Backend.ActivationBackward(op, x.Gpu, dy.Gpu, dx.Gpu);
        Close(dx, 1e-5, 1e-6, $"ActivationBackward {op}");
    }

    // The CPU fuses the bias into the activation's pass; the GPU adds, then activates (IBackend's default).
    [TestCase(UnaryOp.Relu)]
    [TestCase(UnaryOp.Gelu)]
    [TestCase(UnaryOp.GeluTanh)]
    public void BiasActivationMatchesCpu(UnaryOp op)
    {
        var x = Pair(Rand.Uniform(9, 13 * 37, -3f, 3f), 13, 37);
        var bias = Pair(Rand.Uniform(10, 37), 37);
        var dy = Pair(Rand.Uniform(11, 13 * 37), 13, 37);
        var y = Out(13, 37);
        var dx = Out(13, 37);
        Cpu.Backend.BiasActivation(op, x.Cpu, bias.Cpu, y.Cpu);
        Gpu.Backend.BiasActivation(op, x.Gpu, bias.Gpu, y.Gpu);
        Cpu.Backend.BiasActivationBackward(op, x.Cpu, bias.Cpu, dy.Cpu, dx.Cpu);
        Gpu.Backend.BiasActivationBackward(op, x.Gpu, bias.Gpu, dy.Gpu, dx.Gpu);
        Close(y, 2e-6, 1e-6, $"BiasActivation {op}");
        Close(dx, 1e-5, 1e-6, $"BiasActivationBackward {op}");
    }

    [Test]
    public void ElementwiseOpsRunAsPtxKernelsOnTheSimulator()
    {
        SimulatorOnly();
        var x = Pair(Rand.Uniform(8, 10), 10);
        var y = Out(10);
        Gpu.Backend.Unary(UnaryOp.Exp, x.Gpu, y.Gpu);
        Gpu.Backend.Unary(UnaryOp.Relu, x.Gpu, y.Gpu);
        var launches = SimulatedCuda.Launches(Gpu);
        Assert.That(launches.GetValueOrDefault("unary_f32"), Is.EqualTo(1));
        Assert.That(launches.GetValueOrDefault("relu_f32"), Is.EqualTo(1));
    }
}
