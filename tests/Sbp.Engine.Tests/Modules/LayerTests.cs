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

    /// <summary>m.Forward(xs[0]) with weight xs[1] and bias xs[2] substituted (<see cref="Module.WithParameters"/>); disposes m.</summary>
    static Tensor WithWeightAndBias(Module m, Tensor[] xs)
    {
        using (m)
        using (m.WithParameters(new Dictionary<string, Tensor> { ["weight"] = xs[1], ["bias"] = xs[2] }))
            return m.Forward(xs[0]);
    }

    /// <summary>A gradient-check input holding a parameter's current values.</summary>
    static GradInput Initial(Tensor p) => GradInput.Of(p.ToArray(), p.Shape.ToArray());

    /// <summary>
    /// The parameters are the check's inputs, starting from the layer's own initial values; each evaluation
    /// rebuilds the layer (same seed) on the check's device and substitutes them. x is a constant.
    /// </summary>
    [Test]
    public void GradientsOfConvolutionParameters()
    {
        static Conv2d Conv2(Device d) => new(4, 3, [3, 2], new RandomSource(6), stride: [2, 1], padding: [1], groups: 1, device: d);
        static Conv3d Conv3(Device d) => new(2, 4, [2, 3, 1], new RandomSource(8), padding: [0, 1, 0], groups: 2, device: d);
        using var c2 = Conv2(Device);
        GradCheck.Check("Conv2d parameters", xs => WithWeightAndBias(Conv2(xs[0].Device), xs),
            GradInput.Uniform(7, 2, 4, 5, 3).Constant(), Initial(c2.Weight), Initial(c2.Bias!));
        using var c3 = Conv3(Device);
        GradCheck.Check("Conv3d parameters", xs => WithWeightAndBias(Conv3(xs[0].Device), xs),
            GradInput.Uniform(9, 1, 2, 3, 3, 2).Constant(), Initial(c3.Weight), Initial(c3.Bias!));
    }
}
