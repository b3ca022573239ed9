using Sbp.Autograd;
using Sbp.Engine.Tests.Support;
using Sbp.Memory;
using Sbp.Nn;
using Sbp.Rng;
using Sbp.Tensors;

namespace Sbp.Engine.Tests.Modules;

/// <summary>LayerNorm and BatchNorm2d/3d modules: parameters and buffers, float64 forwards, train/eval/frozen statistics, gradients.</summary>
public class NormLayerTests : DeviceTest
{
    static RefTensor R(Tensor t) => RefTensor.Of(t.ToArray(), t.Shape.ToArray());

    [Test]
    public void LayerNormParametersAndForward()
    {
        using var ln = new LayerNorm([3, 4], eps: 1e-3f, device: Device);
        Assert.That(ln.NamedParameters().Select(p => p.Name), Is.EqualTo(new[] { "weight", "bias" }));
        Assert.That(ln.Weight!.ToArray(), Is.All.EqualTo(1f));
        Assert.That(ln.Bias!.ToArray(), Is.All.EqualTo(0f));
        Init.Normal(ln.Weight, 1f, 0.5f, new RandomSource(1));
        Init.Normal(ln.Bias, 0f, 0.5f, new RandomSource(2));
        var x = T(Rand.Uniform(3, 2 * 5 * 12, -2f, 3f), 2, 5, 3, 4);
        var xr = R(x);
        var w = ln.Weight.ToArray();
        var b = ln.Bias.ToArray();
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
        Assert.That(plain.ParameterCount(), Is.Zero);
        using var noBias = new LayerNorm(4, bias: false, device: Device);
        Assert.That(noBias.NamedParameters().Select(p => p.Name), Is.EqualTo(new[] { "weight" }));
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
}
