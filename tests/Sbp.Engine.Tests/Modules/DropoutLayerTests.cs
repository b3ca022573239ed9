using Sbp.Autograd;
using Sbp.Engine.Tests.Support;
using Sbp.Nn;
using Sbp.Rng;
using Sbp.Tensors;

namespace Sbp.Engine.Tests.Modules;

/// <summary>Dropout and DropPath modules: training versus eval, scaling, determinism, per-module streams, and gradients through MultiHeadAttention and Mlp with dropout active.</summary>
public class DropoutLayerTests : DeviceTest
{
    const int B = 2, N = 5, C = 6, H = 2;

    Tensor Ones(params int[] shape) => Tensor.Ones(new Shape(shape), Device);

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
    public void EvalModeAndZeroProbabilityAreTheIdentity()
    {
        using var drop = new Dropout(0.5f, new RandomSource(2), Device);
        var x = T(Rand.Uniform(3, 50), 5, 10);
        drop.Eval();
        var y = drop.Forward(x);
        Assert.That(y, Is.Not.SameAs(x));
        Assert.That(y.ToArray(), Is.EqualTo(x.ToArray()));
        y.Dispose();
        Assert.That(x.IsDisposed, Is.False, "disposing the output leaves the input alone");

        using var none = new Dropout(0f, new RandomSource(2), Device);
        Assert.That(none.Forward(x).ToArray(), Is.EqualTo(x.ToArray()));
        using var path = new DropPath(0.5f, new RandomSource(2), Device);
        path.Eval();
        Assert.That(path.Forward(x).ToArray(), Is.EqualTo(x.ToArray()));
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

    static Dictionary<string, Tensor> Params(Tensor[] xs, params string[] names) =>
        names.Select((n, i) => (n, xs[i + 1])).ToDictionary(p => p.n, p => p.Item2);

    [Test]
    public void AttentionGradientsWithActiveAttentionAndProjectionDropout()
    {
        // Each evaluation builds the module from the same seed, so every run draws the same masks.
        GradCheck.Check("MultiHeadAttention dropout", xs =>
        {
            using var mha = new MultiHeadAttention(C, H, new RandomSource(16), attnDrop: 0.3f, projDrop: 0.2f, device: xs[0].Device);
            using (mha.WithParameters(Params(xs, "qkv.weight", "qkv.bias", "proj.weight", "proj.bias")))
                return mha.Forward(xs[0], xs[5], null);
        },
        GradInput.Uniform(17, B, N, C), GradInput.Uniform(18, 3 * C, C), GradInput.Uniform(19, 3 * C),
        GradInput.Uniform(20, C, C), GradInput.Uniform(21, C), GradInput.Uniform(22, H, N, N));
    }

    [Test]
    public void MlpGradientsWithDropout()
    {
        GradCheck.Check("Mlp dropout", xs =>
        {
            using var mlp = new Mlp(5, 7, 3, new RandomSource(29), drop: 0.4f, device: xs[0].Device);
            using (mlp.WithParameters(Params(xs, "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias")))
                return mlp.Forward(xs[0]);
        },
        GradInput.Uniform(30, 2, 3, 5), GradInput.Uniform(31, 7, 5), GradInput.Uniform(32, 7),
        GradInput.Uniform(33, 3, 7), GradInput.Uniform(34, 3));
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
