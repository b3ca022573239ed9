using Sbp.Autograd;
using Sbp.Engine.Tests.Support;
using Sbp.Nn;
using Sbp.Rng;
using Sbp.Tensors;

namespace Sbp.Engine.Tests.Modules;

/// <summary>
/// LayerNorm, BatchNorm2d/3d (train, eval, frozen), Dropout and DropPath modules are bit for bit the
/// ops they wrap (with the module's parameters, statistics and own random stream). Their other
/// behaviour is covered by NormLayerTests and DropoutLayerTests.
/// </summary>
public class NormAndDropoutTests : DeviceTest
{
    static int[] Bits(Tensor t) => t.ToArray().Select(BitConverter.SingleToInt32Bits).ToArray();

    Tensor Copy(Tensor t) => T(t.ToArray(), t.Shape.ToArray());

    // ---- LayerNorm ------------------------------------------------------------------------------

    [Test]
    public void LayerNormIsOpsLayerNorm()
    {
        using var ln = new LayerNorm(5, device: Device);
        Assert.That(ln.NamedParameters().Select(p => p.Name), Is.EqualTo(new[] { "weight", "bias" }));
        Assert.That(ln.Weight!.ToArray(), Is.All.EqualTo(1f));
        Assert.That(ln.Bias!.ToArray(), Is.All.EqualTo(0f));
        Init.Normal(ln.Weight, 1f, 0.5f, new RandomSource(1));
        Init.Normal(ln.Bias, 0f, 0.5f, new RandomSource(2));
        var x = T(Rand.Uniform(3, 2 * 3 * 5), 2, 3, 5);
        Assert.That(Bits(ln.Forward(x)), Is.EqualTo(Bits(Ops.LayerNorm(x, [5], ln.Weight, ln.Bias, 1e-5f))));

        using var ln2 = new LayerNorm([3, 5], eps: 1e-3f, elementwiseAffine: false, device: Device);
        Assert.That(ln2.ParameterCount(), Is.Zero);
        Assert.That(Bits(ln2.Forward(x)), Is.EqualTo(Bits(Ops.LayerNorm(x, [3, 5], null, null, 1e-3f))));
        using var ln3 = new LayerNorm(5, bias: false, device: Device);
        Assert.That(ln3.NamedParameters().Select(p => p.Name), Is.EqualTo(new[] { "weight" }));
    }

    // ---- BatchNorm ------------------------------------------------------------------------------

    [TestCase(false, false)]
    [TestCase(true, false)]
    [TestCase(false, true)]
    [TestCase(true, true)]
    public void BatchNormFollowsTrainEvalAndFrozen(bool threeD, bool frozen)
    {
        using BatchNorm bn = threeD ? new BatchNorm3d(3, momentum: 0.2f, device: Device) : new BatchNorm2d(3, momentum: 0.2f, device: Device);
        Init.Normal(bn.Weight!, 1f, 0.5f, new RandomSource(1));
        Init.Normal(bn.Bias!, 0f, 0.5f, new RandomSource(2));
        Init.Normal(bn.RunningMean, 0f, 0.5f, new RandomSource(3));
        Init.Uniform(bn.RunningVar, 0.5f, 2f, new RandomSource(4));
        bn.Frozen = frozen;
        int[] shape = threeD ? [2, 3, 2, 3, 4] : [2, 3, 3, 5];
        var x = T(Rand.Uniform(5, shape.Aggregate(1, (a, b) => a * b), -2f, 3f), shape);

        foreach (bool training in new[] { true, false })
        {
            bn.Train(training);
            var mode = frozen ? BatchNormMode.Frozen : training ? BatchNormMode.Train : BatchNormMode.Eval;
            var mean = Copy(bn.RunningMean);
            var var = Copy(bn.RunningVar);
            var meanBefore = bn.RunningMean.ToArray();
            var expected = Ops.BatchNorm(x, bn.Weight, bn.Bias, mean, var, mode, 0.2f, 1e-5f);
            var y = bn.Forward(x);
            Assert.That(Bits(y), Is.EqualTo(Bits(expected)), $"{mode}: the module is the op");
            Assert.That(Bits(bn.RunningMean), Is.EqualTo(Bits(mean)), $"{mode}: running mean updated as the op does");
            Assert.That(Bits(bn.RunningVar), Is.EqualTo(Bits(var)), $"{mode}: running var updated as the op does");
            bool updates = mode == BatchNormMode.Train;
            Assert.That(bn.RunningMean.ToArray(), updates ? Is.Not.EqualTo(meanBefore) : Is.EqualTo(meanBefore), $"{mode}: statistics {(updates ? "" : "not ")}updated");
        }

        // Frozen statistics: the affine parameters still train.
        bn.Train();
        using (TensorScope.Begin())
        using (var tape = Tape.Begin())
            tape.Backward(Ops.Sum(Ops.Mul(bn.Forward(x), x)));
        Assert.That(bn.Weight!.Grad, Is.Not.Null);
        Assert.That(bn.Bias!.Grad, Is.Not.Null);
        Assert.That(bn.RunningMean.Grad, Is.Null);
        bn.ZeroGrad();
        Assert.That(() => bn.Forward(T(new float[6], 2, 3)), Throws.InstanceOf<ShapeMismatchException>().With.Message.Contains("rank"));
    }

    // ---- Dropout / DropPath -----------------------------------------------------------------------

    [Test]
    public void DropoutIsOpsDropoutWithItsOwnStream()
    {
        using var d = new Dropout(0.4f, new RandomSource(5), device: Device);
        var x = T(Rand.Uniform(6, 4 * 9), 4, 9);
        var expectedSource = new RandomSource(5).Split("dropout").Split(0UL);
        var first = d.Forward(x);
        Assert.That(Bits(first), Is.EqualTo(Bits(Ops.Dropout(x, 0.4f, expectedSource, training: true))));
        var second = d.Forward(x);
        Assert.That(Bits(second), Is.EqualTo(Bits(Ops.Dropout(x, 0.4f, expectedSource, training: true))), "the stream advances like the op's");
        Assert.That(Bits(second), Is.Not.EqualTo(Bits(first)));

        d.Eval();
        var y = d.Forward(x);
        Assert.That(y, Is.Not.SameAs(x));
        Assert.That(Bits(y), Is.EqualTo(Bits(x)), "eval mode: the identity");
        d.Train();
        using var none = new Dropout(0f, new RandomSource(5), device: Device);
        Assert.That(Bits(none.Forward(x)), Is.EqualTo(Bits(x)), "p = 0: the identity");
        Assert.That(() => new Dropout(1f, new RandomSource(5)), Throws.InstanceOf<ArgumentOutOfRangeException>());
    }

    [Test]
    public void DropPathIsOpsDropPathWithItsOwnStream()
    {
        using var d = new DropPath(0.5f, new RandomSource(6), device: Device);
        var x = T(Rand.Uniform(7, 8 * 3 * 2), 8, 3, 2);
        var expectedSource = new RandomSource(6).Split("drop_path").Split(0UL);
        Assert.That(Bits(d.Forward(x)), Is.EqualTo(Bits(Ops.DropPath(x, 0.5f, expectedSource, training: true))));
        d.Eval();
        Assert.That(Bits(d.Forward(x)), Is.EqualTo(Bits(x)));
    }

    [Test]
    public void AttentionDropoutIsDeterministicAndOffInEval()
    {
        using var a = new MultiHeadAttention(6, 2, new RandomSource(3), attnDrop: 0.5f, projDrop: 0.2f, device: Device);
        using var b = new MultiHeadAttention(6, 2, new RandomSource(3), attnDrop: 0.5f, projDrop: 0.2f, device: Device);
        var x = T(Rand.Uniform(4, 2 * 5 * 6), 2, 5, 6);
        var ya = a.Forward(x);
        Assert.That(Bits(b.Forward(x)), Is.EqualTo(Bits(ya)));
        a.Eval();
        b.Eval();
        using var plain = new MultiHeadAttention(6, 2, new RandomSource(3), device: Device);
        var ea = a.Forward(x);
        Assert.That(Bits(ea), Is.EqualTo(Bits(plain.Forward(x))), "eval mode: no dropout, the fused op");
        Assert.That(Bits(ea), Is.Not.EqualTo(Bits(ya)));
    }
}
