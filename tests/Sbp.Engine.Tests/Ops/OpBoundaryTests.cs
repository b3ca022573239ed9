using Sbp.Autograd;
using Sbp.Engine.Tests.Support;
using Sbp.Rng;
using Sbp.Tensors;

namespace Sbp.Engine.Tests.OpTests;

/// <summary>
/// The edges of what ops accept (the refusals are in OpRefusalTests): each boundary value runs and
/// gives what it means; and ops with several passes hold nothing but their output when they return.
/// </summary>
public class OpBoundaryTests : DeviceTest
{
    [TestCase(0f)]
    [TestCase(1f)]
    public void BatchNormMomentumAtZeroKeepsAndAtOneReplacesTheRunningStatistics(float momentum)
    {
        var x = T(Rand.Uniform(1, 4 * 2), 4, 2);
        var mean = T([0.5f, -0.5f], 2);
        var variance = T([2f, 3f], 2);
        Ops.BatchNorm(x, null, null, mean, variance, BatchNormMode.Train, momentum);
        var v = x.ToArray();
        var batchMean = new[] { 0, 1 }.Select(c => Enumerable.Range(0, 4).Average(n => (double)v[n * 2 + c])).ToArray();
        var batchVar = new[] { 0, 1 }.Select(c => Enumerable.Range(0, 4).Sum(n => Math.Pow(v[n * 2 + c] - batchMean[c], 2)) / 3).ToArray();
        var expectedMean = momentum == 0 ? new[] { 0.5, -0.5 } : batchMean;
        var expectedVar = momentum == 0 ? new[] { 2.0, 3.0 } : batchVar;
        Assert.That(mean.ToArray(), Is.EqualTo(expectedMean.Select(d => (float)d)).Within(1e-5f));
        Assert.That(variance.ToArray(), Is.EqualTo(expectedVar.Select(d => (float)d)).Within(1e-5f), "unbiased variance, as PyTorch");
    }

    [Test]
    public void CrossEntropyWithFullLabelSmoothingIsTheMeanNegativeLogProbability()
    {
        var logits = T(Rand.Uniform(2, 3 * 4), 3, 4);
        var loss = Ops.CrossEntropy(logits, Idx(0, 2, 3), labelSmoothing: 1f).Item();
        var l = logits.ToArray();
        double expected = Enumerable.Range(0, 3).Average(n =>
        {
            var row = l.Skip(n * 4).Take(4).Select(z => (double)z).ToArray();
            double lse = Math.Log(row.Sum(Math.Exp));
            return row.Average(z => lse - z);
        });
        Assert.That(loss, Is.EqualTo(expected).Within(1e-5));
    }

    [Test]
    public void BinaryCrossEntropyOfAScalar()
    {
        var loss = Ops.BinaryCrossEntropyWithLogits(Tensor.FromArray([0.3f], new Shape([]), Device), Tensor.FromArray([1f], new Shape([]), Device)).Item();
        Assert.That(loss, Is.EqualTo(Math.Log(1 + Math.Exp(-0.3))).Within(1e-6));
    }

    [Test]
    public void AttentionWithAZeroScalarMaskIsAttentionWithoutOne()
    {
        var q = T(Rand.Uniform(11, 2 * 3 * 4), 1, 2, 3, 4);
        var k = T(Rand.Uniform(12, 2 * 5 * 4), 1, 2, 5, 4);
        var v = T(Rand.Uniform(13, 2 * 5 * 4), 1, 2, 5, 4);
        var masked = Ops.ScaledDotProductAttention(q, k, v, mask: Tensor.FromArray([0f], new Shape([]), Device)).ToArray();
        Assert.That(masked, Is.EqualTo(Ops.ScaledDotProductAttention(q, k, v).ToArray()));
    }

    [Test]
    public void RollingAnEmptyAxisGivesTheEmptyTensor() =>
        Assert.That(Ops.Roll(T([], 0, 3), [1, 1], [0, 1]).Shape, Is.EqualTo(new Shape(0, 3)));

    [Test]
    public void DropPathOnAVectorDropsWholeSamples()
    {
        var x = T([1f, 2f, 3f, 4f, 5f, 6f, 7f, 8f], 8);
        var y = Ops.DropPath(x, 0.5f, new RandomSource(3)).ToArray();
        Assert.That(y.Select((v, i) => v == 0 || v == 2 * (i + 1)), Is.All.True, "each sample dropped or scaled by 1 / (1 - p)");
        Assert.That(y.Count(v => v == 0), Is.InRange(1, 7));
    }

    [Test]
    public void GlobalAveragePoolOfASequenceAveragesItsOneAxis()
    {
        var x = T(Rand.Uniform(4, 2 * 3 * 5), 2, 3, 5);
        var v = x.ToArray();
        var expected = Enumerable.Range(0, 6).Select(r => v.Skip(r * 5).Take(5).Average()).ToArray();
        Assert.That(Ops.GlobalAvgPool(x).ToArray(), Is.EqualTo(expected).Within(1e-6f));
    }

    [Test]
    public void LinearRowsOnTheLastRowAlone()
    {
        var x = T(Rand.Uniform(5, 2 * 4), 2, 4);
        var w = T(Rand.Uniform(6, 6 * 4), 6, 4);
        var xv = x.ToArray();
        var wv = w.ToArray();
        var expected = new[] { 0, 1 }.Select(n => Enumerable.Range(0, 4).Sum(i => xv[n * 4 + i] * wv[5 * 4 + i])).ToArray();
        Assert.That(Ops.LinearRows(x, w, null, 5, 1).ToArray(), Is.EqualTo(expected).Within(1e-5f));
    }

    [Test]
    public void BatchNormWithABiasAndNoWeightGivesTheBiasItsGradient()
    {
        var x = T(Rand.Uniform(7, 3 * 2 * 4), 3, 2, 4);
        x.RequiresGrad = true;
        var bias = T([0.1f, 0.2f], 2);
        bias.RequiresGrad = true;
        using var tape = Tape.Begin();
        var y = Ops.BatchNorm(x, null, bias, null, null, BatchNormMode.Train);
        tape.Backward(Ops.Sum(Ops.Mul(y, T(Enumerable.Range(0, 24).Select(i => (float)(i % 5)).ToArray(), 3, 2, 4))));
        var expected = new[] { 0, 1 }.Select(c => (float)Enumerable.Range(0, 24).Where(i => i / 4 % 2 == c).Sum(i => i % 5)).ToArray();
        Assert.That(bias.Grad!.ToArray(), Is.EqualTo(expected).Within(1e-5f));
    }

    /// <summary>Ops that work axis by axis free each intermediate: in use afterwards are the inputs and the output.</summary>
    [Test]
    public void MultiPassOpsHoldOnlyTheirOutputWhenTheyReturn()
    {
        var x = T(Rand.Uniform(8, 4 * 6 * 8), 4, 6, 8);
        var a = T(Rand.Uniform(9, 2 * 5 * 8), 2, 1, 5, 8);
        var b = T(Rand.Uniform(10, 3 * 8 * 7), 1, 3, 8, 7);
        void HoldsOnly(string what, Func<Tensor> op)
        {
            long before = Device.Pool.InUseBytes;
            var y = op();
            Assert.That(Device.Pool.InUseBytes - before, Is.EqualTo(y.Block.Bytes), what);
        }
        HoldsOnly("roll over three axes", () => Ops.Roll(x, [1, 2, 3], [0, 1, 2]));
        HoldsOnly("pad over three axes", () => Ops.Pad(x, [1, 1, 2, 0, 0, 3]));
        HoldsOnly("matmul broadcasting both batches", () => Ops.Matmul(a, b));
    }
}
