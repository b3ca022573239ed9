using Sbp.Autograd;
using Sbp.Engine.Tests.Support;
using Sbp.Rng;
using Sbp.Tensors;

namespace Sbp.Engine.Tests.Nn.Dropout;

public sealed class DropoutTests : DeviceTest
{
    /// <summary>The mask the documented rule gives: m_i = [u_i &gt;= p] / (1 - p), u_i the Philox uniform of element i of the stream.</summary>
    static float[] ExpectedMask(RandomStream stream, long n, float p)
    {
        float scale = (float)(1.0 / (1.0 - p));
        var m = new float[n];
        for (long i = 0; i < n; i++) m[i] = Philox.Uniform(stream.Bits(i)) >= p ? scale : 0f;
        return m;
    }

    [TestCase(0.5f)]
    [TestCase(0.25f)]
    [TestCase(0.1f)]
    [TestCase(0.3f)]
    [TestCase(0.7f)]
    public void Dropout_MaskFollowsPhiloxRule(float p)
    {
        var rng = new RandomSource(1234, position: 8);
        var stream = new RandomSource(1234, position: 8).Take(3 * 5 * 7);
        var y = Ops.Dropout(Tensor.Ones(new Shape(3, 5, 7), Device), p, rng).ToArray();
        Assert.That(y, Is.EqualTo(ExpectedMask(stream, y.Length, p)));
        Assert.That(rng.Position, Is.EqualTo(8UL + 108UL), "105 counters, rounded up to whole Philox blocks");
    }

    [Test]
    public void Dropout_ThresholdIsExactlyP_ForUniformsNextToIt()
    {
        // p = 0.2f is 3355443.25 * 2^-24: the uniforms 3355443 * 2^-24 (< p: dropped) and 3355444 * 2^-24 (>= p: kept)
        // sit on either side of it. A float32 threshold 1f - (1f - p) would round to the first and keep it.
        // Philox bits (key 0) of counter 10994410 give 3355443, of counter 11410130 give 3355444 (found by search).
        const float p = 0.2f;
        Assert.That(Philox.Bits(0, 10994410) >> 8, Is.EqualTo(3355443u));
        Assert.That(Philox.Bits(0, 11410130) >> 8, Is.EqualTo(3355444u));
        var below = Ops.Dropout(Tensor.Ones(new Shape(8), Device), p, new RandomSource(0, 10994408)).ToArray();
        var above = Ops.Dropout(Tensor.Ones(new Shape(8), Device), p, new RandomSource(0, 11410128)).ToArray();
        Assert.That(below[2], Is.Zero, "u just below p is dropped");
        Assert.That(above[2], Is.EqualTo(1.25f), "u just above p is kept, scaled by 1 / (1 - p)");
        Assert.That(Ops.DropPath(Tensor.Ones(new Shape(8, 3), Device), p, new RandomSource(0, 10994408)).ToArray()[6..9], Is.All.Zero);
    }

    [Test]
    public void Dropout_SameSeedSameMask_DifferentSeedDifferentMask()
    {
        var x = T(Rand.Uniform(1, 4 * 33), 4, 33);
        var a = Ops.Dropout(x, 0.4f, new RandomSource(77)).ToArray();
        var b = Ops.Dropout(x, 0.4f, new RandomSource(77)).ToArray();
        var c = Ops.Dropout(x, 0.4f, new RandomSource(78)).ToArray();
        Assert.That(b, Is.EqualTo(a));
        Assert.That(c, Is.Not.EqualTo(a));
        var rng = new RandomSource(77);
        var first = Ops.Dropout(x, 0.4f, rng).ToArray();
        var second = Ops.Dropout(x, 0.4f, rng).ToArray();
        Assert.That(first, Is.EqualTo(a));
        Assert.That(second, Is.Not.EqualTo(first), "consecutive calls draw fresh counters");
    }

    [Test]
    public void Dropout_BackwardReusesTheForwardMaskExactly()
    {
        int[] shape = [3, 5, 7];
        var xd = Rand.Uniform(2, 105);
        var gd = Rand.Uniform(3, 105);
        var x = T(xd, shape);
        x.RequiresGrad = true;
        float[] y;
        using (var tape = Tape.Begin())
        {
            var yt = Ops.Dropout(x, 0.3f, new RandomSource(99, 4));
            y = yt.ToArray();
            Assert.That(tape.Nodes.Single().SavedBytes, Is.EqualTo(x.Bytes), "dropout saves exactly its mask");
            tape.Backward(yt, T(gd, shape));
        }
        var mask = ExpectedMask(new RandomSource(99, 4).Take(105), 105, 0.3f);
        var dx = x.Grad!.ToArray();
        for (int i = 0; i < 105; i++)
        {
            Assert.That(y[i], Is.EqualTo(xd[i] * mask[i]));
            Assert.That(dx[i], Is.EqualTo(gd[i] * mask[i]));
        }
        Assert.That(mask.Count(v => v == 0f), Is.InRange(10, 60));
        x.ZeroGrad();
    }

    [TestCase(0.1f)]
    [TestCase(0.5f)]
    [TestCase(0.9f)]
    public void Dropout_FractionDroppedIsCloseToP(float p)
    {
        const int n = 200_000;
        var y = Ops.Dropout(Tensor.Ones(new Shape(n), Device), p, new RandomSource(5)).ToArray();
        double dropped = y.Count(v => v == 0f) / (double)n;
        Assert.That(dropped, Is.EqualTo(p).Within(0.005));   // 5 standard deviations at p = 0.5
        Assert.That(y.Where(v => v != 0f).Distinct().Single(), Is.EqualTo(1f / (1f - p)));
        Assert.That(y.Average(), Is.EqualTo(1.0).Within(0.03), "the 1 / (1 - p) scale keeps the expectation");
    }

    [Test]
    public void Dropout_Gradients_MatchFiniteDifferences_WithFixedSeed() =>
        GradCheck.Check("dropout p 0.3", xs => Ops.Dropout(xs[0], 0.3f, new RandomSource(42)), GradInput.Uniform(4, 3, 5, 7));

    [Test]
    public void Dropout_PZeroAndEval_AreTheIdentity()
    {
        var xd = Rand.Uniform(6, 35);
        var gd = Rand.Uniform(7, 35);
        foreach (var (p, training) in new[] { (0f, true), (0.5f, false), (0f, false) })
        {
            var x = T(xd, 5, 7);
            x.RequiresGrad = true;
            var rng = new RandomSource(3);
            using (var tape = Tape.Begin())
            {
                var y = Ops.Dropout(x, p, rng, training);
                Assert.That(y.ToArray(), Is.EqualTo(xd));
                Assert.That(y, Is.Not.SameAs(x));
                tape.Backward(y, T(gd, 5, 7));
            }
            Assert.That(x.Grad!.ToArray(), Is.EqualTo(gd));
            Assert.That(rng.Position, Is.EqualTo(0UL), "a disabled dropout draws no random numbers");
            x.ZeroGrad();
        }
        GradCheck.Check("dropout eval", xs => Ops.Dropout(xs[0], 0.5f, new RandomSource(1), training: false), GradInput.Uniform(8, 3, 5));
    }

    [Test]
    public void DisabledForms_AreFreeViews_SavingNothing()
    {
        var x = T(Rand.Uniform(17, 3 * 5 * 7), 3, 5, 7);
        x.RequiresGrad = true;
        long before = Device.Pool.InUseBytes;
        using var tape = Tape.Begin();
        var a = Ops.Dropout(x, 0.5f, new RandomSource(1), training: false);
        var b = Ops.Dropout(x, 0f, new RandomSource(1));
        var c = Ops.DropPath(x, 0.5f, new RandomSource(1), training: false);
        var d = Ops.DropPath(x, 0f, new RandomSource(1));
        Assert.That(Device.Pool.InUseBytes, Is.EqualTo(before), "the identity allocates nothing");
        Assert.That(tape.SavedBytes, Is.Zero);
        Assert.That(new[] { a, b, c, d }.Select(t => t.Block), Is.All.SameAs(x.Block));
        Assert.That(tape.Nodes.Select(n => n.Op), Is.EqualTo(new[] { "dropout", "dropout", "drop_path", "drop_path" }));
    }

    [Test]
    public void EmptyInputs_GiveEmptyOutputs()
    {
        var rng = new RandomSource(2);
        Assert.That(Ops.Dropout(T([], 0, 4), 0.5f, rng).Shape, Is.EqualTo(new Shape(0, 4)));
        Assert.That(Ops.DropPath(T([], 0, 4), 0.5f, rng).Shape, Is.EqualTo(new Shape(0, 4)));
        Assert.That(rng.Position, Is.Zero);
    }

    [Test]
    public void DropPath_ZeroesWholeSamples()
    {
        int[] shape = [32, 3, 2, 5];
        var x = T(Rand.AwayFromZero(9, Ref.Numel(shape)), shape);
        var rng = new RandomSource(11);
        var y = Ops.DropPath(x, 0.5f, rng).ToArray();
        Assert.That(rng.Position, Is.EqualTo(32UL), "one counter per sample");
        var xd = x.ToArray();
        var stream = new RandomSource(11).Take(32);
        int per = 30, dropped = 0;
        for (int s = 0; s < 32; s++)
        {
            bool keep = stream.Uniform(s) >= 0.5f;
            if (!keep) dropped++;
            for (int k = 0; k < per; k++)
                Assert.That(y[s * per + k], Is.EqualTo(keep ? xd[s * per + k] * 2f : 0f), $"sample {s} element {k}");
        }
        Assert.That(dropped, Is.InRange(4, 28), "both kept and dropped samples occur");
    }

    [Test]
    public void DropPath_BackwardReusesTheMask_OnVideo()
    {
        int[] shape = [6, 2, 3, 2, 2];
        int per = 24;
        var xd = Rand.Uniform(12, Ref.Numel(shape));
        var gd = Rand.Uniform(13, Ref.Numel(shape));
        var x = T(xd, shape);
        x.RequiresGrad = true;
        float[] y;
        using (var tape = Tape.Begin())
        {
            var yt = Ops.DropPath(x, 0.35f, new RandomSource(21));
            y = yt.ToArray();
            Assert.That(tape.Nodes.Single().SavedBytes, Is.EqualTo(6 * sizeof(float)), "drop path saves its [N, 1, 1, 1, 1] mask only");
            tape.Backward(yt, T(gd, shape));
        }
        var mask = ExpectedMask(new RandomSource(21).Take(6), 6, 0.35f);
        var dx = x.Grad!.ToArray();
        for (int i = 0; i < xd.Length; i++)
        {
            Assert.That(y[i], Is.EqualTo(xd[i] * mask[i / per]));
            Assert.That(dx[i], Is.EqualTo(gd[i] * mask[i / per]));
        }
        x.ZeroGrad();
    }

    [Test]
    public void DropPath_Gradients_MatchFiniteDifferences_WithFixedSeed() =>
        GradCheck.Check("drop_path p 0.4", xs => Ops.DropPath(xs[0], 0.4f, new RandomSource(8)), GradInput.Uniform(14, 7, 3, 5));

    [Test]
    public void DropPath_PZeroAndEval_AreTheIdentity()
    {
        var xd = Rand.Uniform(15, 20);
        Assert.That(Ops.DropPath(T(xd, 4, 5), 0f, new RandomSource(1)).ToArray(), Is.EqualTo(xd));
        Assert.That(Ops.DropPath(T(xd, 4, 5), 0.7f, new RandomSource(1), training: false).ToArray(), Is.EqualTo(xd));
        GradCheck.Check("drop_path eval", xs => Ops.DropPath(xs[0], 0.3f, new RandomSource(1), training: false), GradInput.Uniform(16, 3, 5));
    }

    [TestCase(0UL, 1001)]
    [TestCase(5UL, 1001)]       // an offset inside a Philox block
    [TestCase(3UL, 70_001)]     // large enough for parallel chunks, which start mid-block
    public void BernoulliMask_Kernel_WritesScaleOrZero(ulong position, int n)
    {
        var mask = Tensor.Empty(new Shape(n), Device);
        var stream = new RandomSource(31, position).Take(n);
        Device.Backend.BernoulliMask(mask, stream, 0.7f, 3f);
        var expected = new float[n];
        for (int i = 0; i < n; i++) expected[i] = Philox.Uniform(Philox.Bits(31, position + (ulong)i)) >= 1f - 0.7f ? 3f : 0f;
        Assert.That(mask.ToArray(), Is.EqualTo(expected));
    }

    [Test]
    public void Errors_InvalidProbabilityAndShapes()
    {
        var x = T(new float[6], 2, 3);
        var rng = new RandomSource(1);
        foreach (var p in new[] { 1f, -0.1f, 1.5f, float.NaN })
        {
            var ex = Assert.Throws<ArgumentOutOfRangeException>(() => Ops.Dropout(x, p, rng));
            Assert.That(ex!.Message, Does.Contain("dropout").And.Contain("[0, 1)"));
            Assert.Throws<ArgumentOutOfRangeException>(() => Ops.DropPath(x, p, rng));
            Assert.Throws<ArgumentOutOfRangeException>(() => Ops.Dropout(x, p, rng, training: false));
        }
        Assert.That(rng.Position, Is.EqualTo(0UL));
        Assert.Throws<ShapeMismatchException>(() => Ops.DropPath(Tensor.Scalar(1f, Device), 0.5f, rng));
        Assert.Throws<ArgumentException>(() => Ops.Dropout(Tensor.FromArray([1, 2], new Shape(2), Device), 0.5f, rng));
    }
}
