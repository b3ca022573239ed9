using Sbp.Autograd;
using Sbp.Engine.Tests.Support;
using Sbp.Nn;
using Sbp.Rng;
using Sbp.Tensors;

namespace Sbp.Engine.Tests.Modules;

/// <summary>Each layer's forward is the functional op it wraps, with the layer's own parameters.</summary>
public class LayerTests : DeviceTest
{
    static int[] Bits(Tensor t) => t.ToArray().Select(BitConverter.SingleToInt32Bits).ToArray();

    [Test]
    public void LinearIsOpsLinear()
    {
        using var l = new Linear(5, 7, new RandomSource(1), device: Device);
        var x = T(Rand.Uniform(2, 3 * 2 * 5), 3, 2, 5);
        Assert.That(Bits(l.Forward(x)), Is.EqualTo(Bits(Ops.Linear(x, l.Weight, l.Bias))));
        Assert.That(l.NamedParameters().Select(p => p.Name), Is.EqualTo(new[] { "weight", "bias" }));
        using var nb = new Linear(5, 7, new RandomSource(1), bias: false, device: Device);
        Assert.That(nb.ParameterCount(), Is.EqualTo(35));
        Assert.That(Bits(nb.Forward(x)), Is.EqualTo(Bits(Ops.Linear(x, nb.Weight))));
    }

    [Test]
    public void Conv2dIsOpsConv2d()
    {
        using var c = new Conv2d(4, 6, [3, 2], new RandomSource(2), stride: [2, 1], padding: [1], dilation: [1, 2], groups: 2, device: Device);
        Assert.That(c.Weight.Shape, Is.EqualTo(new Shape(6, 2, 3, 2)));
        Assert.That(c.ParameterCount(), Is.EqualTo(6 * 2 * 3 * 2 + 6));
        var x = T(Rand.Uniform(3, 2 * 4 * 7 * 5), 2, 4, 7, 5);
        Assert.That(Bits(c.Forward(x)), Is.EqualTo(Bits(Ops.Conv2d(x, c.Weight, c.Bias, [2, 1], [1, 1], [1, 2], 2))));
        using var plain = new Conv2d(4, 3, 3, new RandomSource(2), bias: false, device: Device);
        Assert.That(plain.NamedParameters().Select(p => p.Name), Is.EqualTo(new[] { "weight" }));
        Assert.That(Bits(plain.Forward(x)), Is.EqualTo(Bits(Ops.Conv2d(x, plain.Weight))));
    }

    [Test]
    public void Conv3dIsOpsConv3d()
    {
        using var c = new Conv3d(3, 5, [1, 3, 3], new RandomSource(3), stride: [1, 2, 2], padding: [0, 1, 1], device: Device);
        var x = T(Rand.Uniform(4, 2 * 3 * 3 * 5 * 7), 2, 3, 3, 5, 7);
        Assert.That(Bits(c.Forward(x)), Is.EqualTo(Bits(Ops.Conv3d(x, c.Weight, c.Bias, [1, 2, 2], [0, 1, 1]))));
        Assert.That(c.ParameterCount(), Is.EqualTo(5 * 3 * 9 + 5));
    }

    [Test]
    public void ConvRejectsBadConfigurations()
    {
        var rng = new RandomSource(1);
        Assert.That(() => new Conv2d(4, 6, 3, rng, groups: 3, device: Device), Throws.ArgumentException.With.Message.Contains("groups"));
        Assert.That(() => new Conv3d(4, 6, [3, 3], rng, device: Device), Throws.ArgumentException.With.Message.Contains("3 values"));
        Assert.That(() => new Linear(0, 3, rng, device: Device), Throws.InstanceOf<ArgumentOutOfRangeException>());
        Assert.That(Device.Pool.InUseBytes, Is.Zero, "a failed constructor allocates nothing");
    }

    [Test]
    public void SequentialComposesAndNamesByIndex()
    {
        var rng = new RandomSource(4);
        using var s = new Sequential(new Linear(5, 7, rng, device: Device), new Gelu(device: Device), new Linear(7, 3, rng, device: Device));
        Assert.That(s.NamedParameters().Select(p => p.Name), Is.EqualTo(new[] { "0.weight", "0.bias", "2.weight", "2.bias" }));
        Assert.That(s.Count, Is.EqualTo(3));
        var l0 = (Linear)s[0];
        var l2 = (Linear)s[2];
        var x = T(Rand.Uniform(5, 4 * 5), 4, 5);
        var expected = Ops.Linear(Ops.Gelu(Ops.Linear(x, l0.Weight, l0.Bias)), l2.Weight, l2.Bias);
        Assert.That(Bits(s.Forward(x)), Is.EqualTo(Bits(expected)));
    }

    [Test]
    public void SequentialBackwardReachesEveryParameterWithoutLeaks()
    {
        var rng = new RandomSource(4);
        using var s = new Sequential(new Linear(5, 7, rng, device: Device), new Relu(Device), new Linear(7, 3, rng, device: Device));
        long before = Device.Pool.InUseBytes;
        using (var scope = TensorScope.Begin())
        using (var tape = Tape.Begin())
        {
            var x = T(Rand.Uniform(5, 4 * 5), 4, 5);
            tape.Backward(Ops.Sum(s.Forward(x)));
        }
        Assert.That(s.Parameters().All(p => p.Grad is not null), Is.True);
        s.ZeroGrad();
        Assert.That(Device.Pool.InUseBytes, Is.EqualTo(before));
    }

    [Test]
    public void GradientsOfConvolutionParameters()
    {
        ParameterGradCheck.Check("Conv2d parameters",
            d => new Conv2d(4, 3, [3, 2], new RandomSource(6), stride: [2, 1], padding: [1], groups: 1, device: d),
            (m, x) => m.Forward(x), Rand.Uniform(7, 2 * 4 * 5 * 3), [2, 4, 5, 3]);
        ParameterGradCheck.Check("Conv3d parameters",
            d => new Conv3d(2, 4, [2, 3, 1], new RandomSource(8), padding: [0, 1, 0], groups: 2, device: d),
            (m, x) => m.Forward(x), Rand.Uniform(9, 1 * 2 * 3 * 3 * 2), [1, 2, 3, 3, 2]);
    }
}
