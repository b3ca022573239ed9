using Sbp.Autograd;
using Sbp.Engine.Tests.Support;
using Sbp.Memory;
using Sbp.Nn;
using Sbp.Rng;
using Sbp.Tensors;

namespace Sbp.Engine.Tests.Modules;

/// <summary>
/// LayerNorm, BatchNorm2d/3d, Dropout and DropPath modules: parameters and buffers, bit for bit the ops
/// they wrap (with the module's parameters, statistics and own random stream), float64 forwards,
/// train/eval/frozen statistics, drop rates and scaling, determinism, and gradients.
/// </summary>
public class NormAndDropoutTests : DeviceTest
{
    static int[] Bits(Tensor t) => t.ToArray().Select(BitConverter.SingleToInt32Bits).ToArray();

    static RefTensor R(Tensor t) => RefTensor.Of(t.ToArray(), t.Shape.ToArray());

    Tensor Copy(Tensor t) => T(t.ToArray(), t.Shape.ToArray());

    Tensor Ones(params int[] shape) => Tensor.Ones(new Shape(shape), Device);

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

    [Test]
    public void LayerNormMatchesFloat64()
    {
        using var ln = new LayerNorm([3, 4], eps: 1e-3f, device: Device);
        Init.Normal(ln.Weight!, 1f, 0.5f, new RandomSource(1));
        Init.Normal(ln.Bias!, 0f, 0.5f, new RandomSource(2));
        var x = T(Rand.Uniform(3, 2 * 5 * 12, -2f, 3f), 2, 5, 3, 4);
        var xr = R(x);
        var w = ln.Weight!.ToArray();
        var b = ln.Bias!.ToArray();
        var y = RefTensor.Zeros(2, 5, 3, 4);
        for (int row = 0; row < 10; row++)
        {
            double mean = 0, var = 0;
            for (int k = 0; k < 12; k++) mean += xr.Data[row * 12 + k];
            mean /= 12;
            for (int k = 0; k < 12; k++) var += Math.Pow(xr.Data[row * 12 + k] - mean, 2);
            var /= 12;
            for (int k = 0; k < 12; k++) y.Data[row * 12 + k] = (xr.Data[row * 12 + k] - mean) / Math.Sqrt(var + 1e-3) * w[k] + b[k];
        }
        Ref.AssertClose("LayerNorm", ln.Forward(x), y, 1e-5, 1e-5);

        using var plain = new LayerNorm(4, elementwiseAffine: false, device: Device);
        Assert.That(() => plain.Forward(T(new float[6], 2, 3)), Throws.TypeOf<ShapeMismatchException>());
    }

    [Test]
    public void LayerNormGradients()
    {
        GradCheck.Check("LayerNorm module", xs =>
        {
            using var ln = new LayerNorm(5, device: xs[0].Device);
            using (ln.WithParameters(new Dictionary<string, Tensor> { ["weight"] = xs[1], ["bias"] = xs[2] }))
                return ln.Forward(xs[0]);
        }, GradInput.Uniform(1, 3, 2, 5), GradInput.Range(2, 0.5f, 1.5f, 5), GradInput.Uniform(3, 5));
    }

    // ---- BatchNorm ------------------------------------------------------------------------------

    /// <summary>Per-channel mean and biased variance of x [N, C, ...] in float64.</summary>
    static (double[] Mean, double[] Var, int Count) ChannelStats(RefTensor x)
    {
        int n = x.Shape[0], c = x.Shape[1], inner = x.Data.Length / (n * c);
        var mean = new double[c];
        var var = new double[c];
        for (int ch = 0; ch < c; ch++)
        {
            var vals = Enumerable.Range(0, n).SelectMany(s => Enumerable.Range(0, inner).Select(i => x.Data[(s * c + ch) * inner + i])).ToArray();
            mean[ch] = vals.Average();
            var[ch] = vals.Sum(v => (v - mean[ch]) * (v - mean[ch])) / vals.Length;
        }
        return (mean, var, n * inner);
    }

    static RefTensor Normalize(RefTensor x, double[] mean, double[] var, float[] w, float[] b, double eps)
    {
        int n = x.Shape[0], c = x.Shape[1], inner = x.Data.Length / (n * c);
        var y = RefTensor.Zeros(x.Shape);
        for (int k = 0; k < x.Data.Length; k++)
        {
            int ch = k / inner % c;
            y.Data[k] = (x.Data[k] - mean[ch]) / Math.Sqrt(var[ch] + eps) * w[ch] + b[ch];
        }
        return y;
    }

    BatchNorm2d NewBatchNorm(int c, float momentum = 0.1f)
    {
        var bn = new BatchNorm2d(c, momentum, device: Device);
        Init.Normal(bn.Weight!, 1f, 0.3f, new RandomSource(11));
        Init.Normal(bn.Bias!, 0f, 0.3f, new RandomSource(12));
        Init.Normal(bn.RunningMean, 0f, 0.5f, new RandomSource(13));
        Init.Uniform(bn.RunningVar, 0.5f, 2f, new RandomSource(14));
        return bn;
    }

    [Test]
    public void BatchNormHasPyTorchParametersAndBuffers()
    {
        using var model = new Sequential(new Conv2d(2, 3, 3, new RandomSource(1), device: Device), new BatchNorm2d(3, device: Device));
        Assert.That(model.StateDict().Keys, Is.EqualTo(new[] { "0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var" }));
        Assert.That(model.NamedBuffers().Select(b => b.Name), Is.EqualTo(new[] { "1.running_mean", "1.running_var" }));
        Assert.That(model.ParameterCount(), Is.EqualTo(2 * 3 * 9 + 3 + 3 + 3));
        var bn = (BatchNorm2d)model[1];
        Assert.That(bn.RunningMean.ToArray(), Is.All.EqualTo(0f));
        Assert.That(bn.RunningVar.ToArray(), Is.All.EqualTo(1f));
        Assert.That(bn.RunningVar.RequiresGrad, Is.False);
        Assert.That(Device.Pool.InUse(MemoryCategory.Parameter), Is.EqualTo(model.StateBytes()));
        using var noAffine = new BatchNorm3d(4, affine: false, device: Device);
        Assert.That(noAffine.ParameterCount(), Is.Zero);
        Assert.That(noAffine.StateDict().Keys, Is.EqualTo(new[] { "running_mean", "running_var" }));
    }

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

    [Test]
    public void TrainingUsesBatchStatisticsAndUpdatesTheRunningOnes()
    {
        using var bn = NewBatchNorm(3, momentum: 0.2f);
        var rm0 = bn.RunningMean.ToArray();
        var rv0 = bn.RunningVar.ToArray();
        var x = T(Rand.Uniform(1, 4 * 3 * 5 * 2, -1f, 3f), 4, 3, 5, 2);
        var (mean, var, count) = ChannelStats(R(x));
        Ref.AssertClose("BatchNorm2d train", bn.Forward(x), Normalize(R(x), mean, var, bn.Weight!.ToArray(), bn.Bias!.ToArray(), 1e-5), 1e-5, 1e-5);
        var rm = bn.RunningMean.ToArray();
        var rv = bn.RunningVar.ToArray();
        for (int c = 0; c < 3; c++)
        {
            Assert.That(rm[c], Is.EqualTo(0.8 * rm0[c] + 0.2 * mean[c]).Within(1e-5), $"running_mean[{c}]");
            Assert.That(rv[c], Is.EqualTo(0.8 * rv0[c] + 0.2 * var[c] * count / (count - 1)).Within(1e-5), $"running_var[{c}] (unbiased)");
        }
    }

    [Test]
    public void EvalUsesTheRunningStatisticsAndKeepsThem()
    {
        using var bn = NewBatchNorm(3);
        bn.Eval();
        var rm = bn.RunningMean.ToArray();
        var rv = bn.RunningVar.ToArray();
        var x = T(Rand.Uniform(2, 2 * 3 * 4 * 3), 2, 3, 4, 3);
        var expected = Normalize(R(x), rm.Select(v => (double)v).ToArray(), rv.Select(v => (double)v).ToArray(), bn.Weight!.ToArray(), bn.Bias!.ToArray(), 1e-5);
        Ref.AssertClose("BatchNorm2d eval", bn.Forward(x), expected, 1e-5, 1e-5);
        Assert.That(bn.RunningMean.ToArray(), Is.EqualTo(rm));
        Assert.That(bn.RunningVar.ToArray(), Is.EqualTo(rv));
        Assert.That(bn.Mode, Is.EqualTo(BatchNormMode.Eval));
    }

    [Test]
    public void FrozenKeepsStatisticsWhileTheAffineParametersTrain()
    {
        using var bn = NewBatchNorm(3);
        bn.Frozen = true;
        Assert.That(bn.Training, Is.True);
        Assert.That(bn.Mode, Is.EqualTo(BatchNormMode.Frozen));
        var rm = bn.RunningMean.ToArray();
        var rv = bn.RunningVar.ToArray();
        var x = T(Rand.Uniform(3, 2 * 3 * 4 * 3), 2, 3, 4, 3);
        x.RequiresGrad = true;
        using (var tape = Tape.Begin())
        {
            var y = bn.Forward(x);
            var expected = Normalize(R(x), rm.Select(v => (double)v).ToArray(), rv.Select(v => (double)v).ToArray(), bn.Weight!.ToArray(), bn.Bias!.ToArray(), 1e-5);
            Ref.AssertClose("BatchNorm2d frozen", y, expected, 1e-5, 1e-5);
            tape.Backward(Ops.Sum(y));
        }
        Assert.That(bn.RunningMean.ToArray(), Is.EqualTo(rm));
        Assert.That(bn.RunningVar.ToArray(), Is.EqualTo(rv));
        Assert.That(bn.Weight!.Grad, Is.Not.Null);
        Assert.That(bn.Bias!.Grad!.ToArray(), Is.All.EqualTo(2f * 4 * 3), "d sum / d bias = elements per channel");
        // dx = weight / sqrt(running_var + eps), per channel.
        var g = x.Grad!.ToArray();
        var w = bn.Weight.ToArray();
        for (int k = 0; k < g.Length; k++)
            Assert.That(g[k], Is.EqualTo(w[k / 12 % 3] / Math.Sqrt(rv[k / 12 % 3] + 1e-5)).Within(1e-5));
        bn.ZeroGrad();
        x.ZeroGrad();
    }

    [Test]
    public void BatchNormGradientsInEachMode()
    {
        foreach (var (mode, configure) in new (string, Action<BatchNorm>)[] { ("train", _ => { }), ("eval", m => m.Eval()), ("frozen", m => m.Frozen = true) })
        {
            GradCheck.Check($"BatchNorm3d {mode}", xs =>
            {
                using var bn = new BatchNorm3d(3, device: xs[0].Device);
                Init.Uniform(bn.RunningVar, 0.5f, 2f, new RandomSource(4));
                Init.Normal(bn.RunningMean, 0f, 0.5f, new RandomSource(5));
                configure(bn);
                using (bn.WithParameters(new Dictionary<string, Tensor> { ["weight"] = xs[1], ["bias"] = xs[2] }))
                    return bn.Forward(xs[0]);
            }, GradInput.Uniform(6, 2, 3, 2, 3, 1), GradInput.Range(7, 0.5f, 1.5f, 3), GradInput.Uniform(8, 3));
        }
    }

    [Test]
    public void BatchNormChecksItsInput()
    {
        using var bn2 = new BatchNorm2d(3, device: Device);
        using var bn3 = new BatchNorm3d(3, device: Device);
        Assert.That(() => bn2.Forward(T(new float[2 * 3 * 4 * 2 * 2], 2, 3, 4, 2, 2)), Throws.TypeOf<ShapeMismatchException>().With.Message.Contains("rank 4"));
        Assert.That(() => bn3.Forward(T(new float[2 * 4 * 2 * 2 * 2], 2, 4, 2, 2, 2)), Throws.TypeOf<ShapeMismatchException>().With.Message.Contains("[N, 3"));
        Assert.That(() => new BatchNorm2d(0, device: Device), Throws.InstanceOf<ArgumentOutOfRangeException>());
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
        y.Dispose();
        Assert.That(x.IsDisposed, Is.False, "disposing the output leaves the input alone");
        d.Train();
        using var none = new Dropout(0f, new RandomSource(5), device: Device);
        Assert.That(Bits(none.Forward(x)), Is.EqualTo(Bits(x)), "p = 0: the identity");
    }

    [Test]
    public void DropoutDropsAFractionPAndScalesTheRest()
    {
        using var drop = new Dropout(0.3f, new RandomSource(1), Device);
        var y = drop.Forward(Ones(20_000)).ToArray();
        double dropped = y.Count(v => v == 0f) / (double)y.Length;
        Assert.That(dropped, Is.EqualTo(0.3).Within(0.015));
        Assert.That(y.Where(v => v != 0f), Is.All.EqualTo(1f / 0.7f));
    }

    [Test]
    public void MasksAreDeterministicPerSeedAndDifferPerModuleAndStep()
    {
        var x = Ones(256);
        float[] Run(ulong seed, int steps)
        {
            using var d = new Dropout(0.5f, new RandomSource(seed), Device);
            float[] last = [];
            for (int i = 0; i < steps; i++) last = d.Forward(x).ToArray();
            return last;
        }
        var first = Run(5, 1);
        Assert.That(Run(5, 1), Is.EqualTo(first));
        Assert.That(Run(5, 2), Is.Not.EqualTo(Run(5, 1)), "each forward draws a fresh mask");
        Assert.That(Run(6, 1), Is.Not.EqualTo(Run(5, 1)));

        var rng = new RandomSource(7);
        using var a = new Dropout(0.5f, rng, Device);
        using var b = new Dropout(0.5f, rng, Device);
        Assert.That(a.Forward(x).ToArray(), Is.Not.EqualTo(b.Forward(x).ToArray()), "two modules from one source have their own streams");
    }

    [Test]
    public void DropoutGradientIsTheScaledMask()
    {
        using var drop = new Dropout(0.25f, new RandomSource(8), Device);
        var x = T(Rand.Uniform(9, 40), 4, 10);
        x.RequiresGrad = true;
        float[] y;
        using (var tape = Tape.Begin())
        {
            var output = drop.Forward(x);
            y = output.ToArray();
            tape.Backward(Ops.Sum(output));
        }
        var xs = x.ToArray();
        var g = x.Grad!.ToArray();
        for (int i = 0; i < xs.Length; i++)
            Assert.That(y[i], Is.EqualTo(xs[i] * g[i]).Within(1e-6), $"element {i}: y = x * dy/dx (mask / (1 - p))");
        Assert.That(g, Is.All.EqualTo(0f).Or.EqualTo(1f / 0.75f));
        x.ZeroGrad();
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
    public void DropPathDropsWholeSamples()
    {
        using var path = new DropPath(0.4f, new RandomSource(10), Device);
        var y = path.Forward(Ones(4000, 3, 2)).ToArray();
        int dropped = 0;
        for (int s = 0; s < 4000; s++)
        {
            var sample = y.AsSpan(s * 6, 6).ToArray();
            Assert.That(sample, Is.All.EqualTo(sample[0]), $"sample {s} is dropped or kept as a whole");
            Assert.That(sample[0], Is.EqualTo(0f).Or.EqualTo(1f / 0.6f));
            if (sample[0] == 0f) dropped++;
        }
        Assert.That(dropped / 4000.0, Is.EqualTo(0.4).Within(0.03));
    }

    [Test]
    public void BadProbabilitiesAreRejected()
    {
        var rng = new RandomSource(1);
        Assert.That(() => new Dropout(1f, rng, Device), Throws.InstanceOf<ArgumentOutOfRangeException>().With.Message.Contains("[0, 1)"));
        Assert.That(() => new DropPath(-0.1f, rng, Device), Throws.InstanceOf<ArgumentOutOfRangeException>());
        Assert.That(() => new Mlp(3, 4, rng, drop: 1.5f, device: Device), Throws.InstanceOf<ArgumentOutOfRangeException>());
        Assert.That(Device.Pool.InUseBytes, Is.Zero);
    }
}
