using Sbp.Engine.Tests.Support;
using Sbp.Nn;
using Sbp.Rng;
using Sbp.Tensors;

namespace Sbp.Engine.Tests.Modules;

/// <summary>Init: distributions (bounds, mean, standard deviation), fans, gains and determinism.</summary>
public class InitTests : DeviceTest
{
    static (double Mean, double Std, double MinV, double MaxV) Stats(float[] v)
    {
        double mean = v.Average(x => (double)x);
        double var = v.Sum(x => (x - mean) * (x - mean)) / v.Length;
        return (mean, Math.Sqrt(var), v.Min(), v.Max());
    }

    float[] Fill(Action<Tensor, RandomSource> init, int[] shape, ulong seed = 7)
    {
        var t = Tensor.Empty(new Shape(shape), Device);
        init(t, new RandomSource(seed));
        return t.ToArray();
    }

    // 200 x 150 = 30000 samples: the sample std is within ~1% of the true one (5 sigma ~ 2%).
    static readonly int[] Big = [200, 150];

    [Test]
    public void FansFollowPyTorch()
    {
        Assert.That(Init.Fans(new Shape(7, 5)), Is.EqualTo((5L, 7L)));
        Assert.That(Init.Fans(new Shape(8, 3, 3, 5, 5)), Is.EqualTo((3L * 75, 8L * 75)));
        Assert.That(() => Init.Fans(new Shape(5)), Throws.InstanceOf<ShapeMismatchException>().With.Message.Contains("fewer than 2"));
        Assert.That(Init.Gain(Nonlinearity.Relu), Is.EqualTo(Math.Sqrt(2)).Within(1e-15));
        Assert.That(Init.Gain(Nonlinearity.Tanh), Is.EqualTo(5.0 / 3).Within(1e-15));
        Assert.That(Init.Gain(Nonlinearity.LeakyRelu, Math.Sqrt(5)), Is.EqualTo(Math.Sqrt(1.0 / 3)).Within(1e-15));
        Assert.That(Init.Gain(Nonlinearity.Linear), Is.EqualTo(1.0));
    }

    [Test]
    public void KaimingUniformDefaultIsPyTorchsLinearInit()
    {
        // a = sqrt 5: bound = sqrt(1/3) * sqrt(3 / fan_in) = 1 / sqrt(fan_in), fan_in = 150.
        var v = Fill((t, r) => Init.KaimingUniform(t, r, MathF.Sqrt(5f)), Big);
        double bound = 1 / Math.Sqrt(150);
        var s = Stats(v);
        Assert.That(s.MinV, Is.GreaterThanOrEqualTo(-bound));
        Assert.That(s.MaxV, Is.LessThan(bound));
        Assert.That(s.MinV, Is.LessThan(-0.99 * bound), "fills the whole range");
        Assert.That(s.Std, Is.EqualTo(bound / Math.Sqrt(3)).Within(2).Percent);
        Assert.That(s.Mean, Is.EqualTo(0).Within(0.02 * bound));
    }

    [Test]
    public void KaimingNormalUsesTheChosenFanAndGain()
    {
        var fanIn = Stats(Fill((t, r) => Init.KaimingNormal(t, r, nonlinearity: Nonlinearity.Relu), Big));
        Assert.That(fanIn.Std, Is.EqualTo(Math.Sqrt(2.0 / 150)).Within(2).Percent);
        var fanOut = Stats(Fill((t, r) => Init.KaimingNormal(t, r, mode: FanMode.FanOut, nonlinearity: Nonlinearity.Relu), Big));
        Assert.That(fanOut.Std, Is.EqualTo(Math.Sqrt(2.0 / 200)).Within(2).Percent);
        Assert.That(fanOut.Mean, Is.EqualTo(0).Within(0.02 * fanOut.Std));
        var conv = Stats(Fill((t, r) => Init.KaimingUniform(t, r, 0f, FanMode.FanOut, Nonlinearity.Relu), [16, 12, 3, 5, 5]));
        double bound = Math.Sqrt(2) * Math.Sqrt(3.0 / (16 * 75));
        Assert.That(conv.MaxV, Is.LessThan(bound));
        Assert.That(conv.Std, Is.EqualTo(bound / Math.Sqrt(3)).Within(2).Percent);
    }

    [Test]
    public void XavierUsesBothFans()
    {
        double bound = Math.Sqrt(6.0 / 350);
        var u = Stats(Fill((t, r) => Init.XavierUniform(t, r), Big));
        Assert.That(u.MaxV, Is.LessThan(bound));
        Assert.That(u.MinV, Is.GreaterThanOrEqualTo(-bound));
        Assert.That(u.Std, Is.EqualTo(bound / Math.Sqrt(3)).Within(2).Percent);
        var n = Stats(Fill((t, r) => Init.XavierNormal(t, r, gain: 2f), Big));
        Assert.That(n.Std, Is.EqualTo(2 * Math.Sqrt(2.0 / 350)).Within(2).Percent);
    }

    [Test]
    public void TruncatedNormalIsClippedAtTwoStandardDeviations()
    {
        const float std = 0.02f;
        var s = Stats(Fill((t, r) => Init.TruncatedNormal(t, std, r), Big));
        Assert.That(s.MinV, Is.GreaterThanOrEqualTo(-2 * std));
        Assert.That(s.MaxV, Is.LessThanOrEqualTo(2 * std));
        Assert.That(s.MaxV, Is.GreaterThan(1.9 * std), "reaches the tails");
        // The standard deviation of N(0, 1) truncated to [-2, 2] is 0.8796.
        Assert.That(s.Std, Is.EqualTo(0.87962566 * std).Within(2).Percent);
        Assert.That(s.Mean, Is.EqualTo(0).Within(0.02 * std));

        var shifted = Stats(Fill((t, r) => Init.TruncatedNormal(t, 1f, r, mean: 3f, a: 0f, b: 1f), Big));
        Assert.That(shifted.MinV, Is.GreaterThanOrEqualTo(3.0));
        Assert.That(shifted.MaxV, Is.LessThanOrEqualTo(4.0));
        // Mean of N(0,1) truncated to [0, 1]: (phi(0) - phi(1)) / (Phi(1) - Phi(0)) = 0.45986.
        Assert.That(shifted.Mean, Is.EqualTo(3.45986).Within(0.01));
    }

    [Test]
    public void ConstantsFill()
    {
        var t = Tensor.Empty(new Shape(3, 5), Device);
        Init.Ones(t);
        Assert.That(t.ToArray(), Is.All.EqualTo(1f));
        Init.Zeros(t);
        Assert.That(t.ToArray(), Is.All.EqualTo(0f));
        Init.Constant(t, -2.5f);
        Assert.That(t.ToArray(), Is.All.EqualTo(-2.5f));
    }

    [Test]
    public void SameSeedSameWeightsAndEachCallAdvancesTheSource()
    {
        foreach (var init in new Action<Tensor, RandomSource>[]
                 {
                     (t, r) => Init.TruncatedNormal(t, 0.02f, r), (t, r) => Init.KaimingUniform(t, r),
                     (t, r) => Init.KaimingNormal(t, r), (t, r) => Init.XavierUniform(t, r), (t, r) => Init.XavierNormal(t, r),
                 })
        {
            var a = Fill(init, [7, 5], seed: 11);
            var b = Fill(init, [7, 5], seed: 11);
            var c = Fill(init, [7, 5], seed: 12);
            Assert.That(b, Is.EqualTo(a));
            Assert.That(c, Is.Not.EqualTo(a));
            var rng = new RandomSource(11);
            var t1 = Tensor.Empty(new Shape(7, 5), Device);
            var t2 = Tensor.Empty(new Shape(7, 5), Device);
            init(t1, rng);
            init(t2, rng);
            Assert.That(t1.ToArray(), Is.EqualTo(a));
            Assert.That(t2.ToArray(), Is.Not.EqualTo(a), "a second call draws new numbers");
        }
    }

    [Test]
    public void LayersUsePyTorchDefaultsAndAreDeterministic()
    {
        using var l1 = new Linear(40, 30, new RandomSource(5), device: Device);
        using var l2 = new Linear(40, 30, new RandomSource(5), device: Device);
        float bound = 1f / MathF.Sqrt(40);
        Assert.That(l1.Weight.ToArray().Select(Math.Abs), Is.All.LessThan(bound));
        Assert.That(l1.Bias!.ToArray().Select(Math.Abs), Is.All.LessThan(bound));
        Assert.That(l2.Weight.ToArray(), Is.EqualTo(l1.Weight.ToArray()));
        Assert.That(l2.Bias!.ToArray(), Is.EqualTo(l1.Bias.ToArray()));
        Assert.That(Stats(l1.Weight.ToArray()).Std, Is.EqualTo(bound / Math.Sqrt(3)).Within(8).Percent);

        using var conv = new Conv3d(6, 8, [3, 5, 5], new RandomSource(5), groups: 2, device: Device);
        float cb = 1f / MathF.Sqrt(3 * 75);
        Assert.That(conv.Weight.Shape, Is.EqualTo(new Shape(8, 3, 3, 5, 5)));
        Assert.That(conv.Weight.ToArray().Select(Math.Abs), Is.All.LessThan(cb));
        Assert.That(conv.Bias!.ToArray().Select(Math.Abs), Is.All.LessThan(cb));
        Assert.That(Stats(conv.Weight.ToArray()).Std, Is.EqualTo(cb / Math.Sqrt(3)).Within(5).Percent);
    }

    [Test]
    public void InitializersRejectBadArguments()
    {
        var t = Tensor.Empty(new Shape(3, 4), Device);
        var rng = new RandomSource(1);
        Assert.That(() => Init.TruncatedNormal(t, 1f, rng, a: 2f, b: -2f), Throws.ArgumentException.With.Message.Contains("below"));
        Assert.That(() => Init.Normal(t, 0f, -1f, rng), Throws.ArgumentException.With.Message.Contains("std"));
        var ints = Tensor.FromArray(new[] { 1, 2 }, new Shape(2), Device);
        Assert.That(() => Init.Ones(ints), Throws.ArgumentException.With.Message.Contains("Float32"));
        var vector = Tensor.Empty(new Shape(4), Device);
        Assert.That(() => Init.XavierUniform(vector, rng), Throws.InstanceOf<ShapeMismatchException>());
    }
}
