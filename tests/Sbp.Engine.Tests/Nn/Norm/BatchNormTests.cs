using Sbp.Autograd;
using Sbp.Engine.Tests.Support;
using Sbp.Memory;
using Sbp.Tensors;

namespace Sbp.Engine.Tests.Nn.Norm;

/// <summary>A batch-norm configuration: input shape [N, C, ...], mode, and whether weight and bias exist.</summary>
public sealed record BatchNormCase(string Name, int[] X, BatchNormMode Mode, bool Affine)
{
    public int C => X[1];

    public GradInput[] Inputs(int seed) => Affine
        ? [GradInput.Uniform(seed, X), GradInput.Range(seed + 1, 0.5f, 1.5f, C), GradInput.Uniform(seed + 2, C)]
        : [GradInput.Uniform(seed, X)];

    /// <summary>Running statistics made fresh for every evaluation (Train updates them in place).</summary>
    public Tensor Run(Tensor[] xs)
    {
        var device = xs[0].Device;
        var rm = Tensor.FromArray(Rand.Uniform(101, C, -0.5f, 0.5f), new Shape(C), device);
        var rv = Tensor.FromArray(Rand.Positive(102, C), new Shape(C), device);
        return Ops.BatchNorm(xs[0], Affine ? xs[1] : null, Affine ? xs[2] : null, rm, rv, Mode, momentum: 0.2f);
    }

    public override string ToString() => Name;
}

public sealed class BatchNormTests : DeviceTest
{
    public static readonly BatchNormCase[] Cases =
    [
        new("train [N, C]", [5, 3], BatchNormMode.Train, true),
        new("train 2-D [2, 3, 4, 5]", [2, 3, 4, 5], BatchNormMode.Train, true),
        new("train 3-D [2, 3, 2, 3, 3]", [2, 3, 2, 3, 3], BatchNormMode.Train, true),
        new("train 2-D no affine [3, 2, 3, 5]", [3, 2, 3, 5], BatchNormMode.Train, false),
        new("train N = 1 [1, 3, 2, 5]", [1, 3, 2, 5], BatchNormMode.Train, true),
        new("eval 2-D [2, 3, 4, 5]", [2, 3, 4, 5], BatchNormMode.Eval, true),
        new("eval [N, C] no affine", [5, 3], BatchNormMode.Eval, false),
        new("frozen 3-D [2, 3, 2, 3, 3]", [2, 3, 2, 3, 3], BatchNormMode.Frozen, true),
        new("frozen [N, C]", [4, 5], BatchNormMode.Frozen, true),
    ];

    [TestCaseSource(nameof(Cases))]
    public void Gradients_MatchFiniteDifferences(BatchNormCase c) =>
        GradCheck.Check("batch_norm " + c.Name, c.Run, c.Inputs(11));

    [TestCase(BatchNormMode.Train)]
    [TestCase(BatchNormMode.Frozen)]
    public void Gradients_OnlyAffineNeedsGrad(BatchNormMode mode)
    {
        var c = new BatchNormCase("affine only", [2, 3, 3, 4], mode, true);
        var inputs = c.Inputs(21);
        inputs[0] = inputs[0].Constant();
        GradCheck.Check($"batch_norm {mode} affine only", c.Run, inputs);
    }

    [TestCase(BatchNormMode.Train)]
    [TestCase(BatchNormMode.Eval)]
    [TestCase(BatchNormMode.Frozen)]
    public void Gradients_OnlyBiasNeedsGrad(BatchNormMode mode)
    {
        var c = new BatchNormCase("bias only", [3, 2, 3, 5], mode, true);
        var inputs = c.Inputs(26);
        inputs[0] = inputs[0].Constant();
        inputs[1] = inputs[1].Constant();
        GradCheck.Check($"batch_norm {mode} bias only", c.Run, inputs);
    }

    [TestCase(BatchNormMode.Train)]
    [TestCase(BatchNormMode.Eval)]
    public void Gradients_OnlyInputNeedsGrad(BatchNormMode mode)
    {
        var c = new BatchNormCase("x only", [3, 2, 5], mode, true);
        var inputs = c.Inputs(31);
        inputs[1] = inputs[1].Constant();
        inputs[2] = inputs[2].Constant();
        GradCheck.Check($"batch_norm {mode} x only", c.Run, inputs);
    }

    [TestCaseSource(nameof(Cases))]
    public void Forward_MatchesFloat64Reference(BatchNormCase c)
    {
        var xd = Rand.Normal(3, Ref.Numel(c.X), 2f).Select(v => v + 1.5f).ToArray();
        var wd = Rand.Uniform(4, c.C);
        var bd = Rand.Uniform(5, c.C);
        var rmd = Rand.Uniform(6, c.C);
        var rvd = Rand.Positive(7, c.C);
        var rm = T(rmd, c.C);
        var rv = T(rvd, c.C);
        var y = Ops.BatchNorm(T(xd, c.X), c.Affine ? T(wd, c.C) : null, c.Affine ? T(bd, c.C) : null, rm, rv, c.Mode, momentum: 0.25f);

        var x64 = RefTensor.Of(xd, c.X);
        var (mean, biased, unbiased) = NormReference.ChannelStats(x64);
        bool train = c.Mode == BatchNormMode.Train;
        var expected = NormReference.BatchNorm(x64,
            train ? mean : rmd.Select(v => (double)v).ToArray(),
            train ? biased : rvd.Select(v => (double)v).ToArray(),
            c.Affine ? RefTensor.Of(wd, c.C) : null, c.Affine ? RefTensor.Of(bd, c.C) : null);
        Ref.AssertClose("batch_norm " + c.Name, y, expected, rtol: 1e-4, atol: 1e-5);

        if (train)
        {
            var m = rmd.Select((v, i) => 0.75 * v + 0.25 * mean[i]).ToArray();
            var v2 = rvd.Select((v, i) => 0.75 * v + 0.25 * unbiased[i]).ToArray();
            Ref.AssertClose("running mean", rm, new RefTensor(m, [c.C]), rtol: 1e-5, atol: 1e-6);
            Ref.AssertClose("running var", rv, new RefTensor(v2, [c.C]), rtol: 1e-5, atol: 1e-6);
        }
        else
        {
            Assert.That(rm.ToArray(), Is.EqualTo(rmd), "running mean must not change outside training");
            Assert.That(rv.ToArray(), Is.EqualTo(rvd), "running var must not change outside training");
        }
    }

    [Test]
    public void Train_RunningStatsAfterTwoStepsMatchFloat64()
    {
        int[] shape = [3, 4, 2, 3, 5];
        const double momentum = 0.3;
        var rmd = Rand.Uniform(40, 4);
        var rvd = Rand.Positive(41, 4);
        var rm = T(rmd, 4);
        var rv = T(rvd, 4);
        var w = T(Rand.Uniform(42, 4), 4);
        var b = T(Rand.Uniform(43, 4), 4);
        w.RequiresGrad = true;
        b.RequiresGrad = true;
        var expectedMean = rmd.Select(v => (double)v).ToArray();
        var expectedVar = rvd.Select(v => (double)v).ToArray();
        for (int step = 0; step < 2; step++)
        {
            var xd = Rand.Normal(44 + step, Ref.Numel(shape), 1.5f).Select(v => v + step - 0.5f).ToArray();
            var x = T(xd, shape);
            x.RequiresGrad = true;
            using (var tape = Tape.Begin())
            {
                var y = Ops.BatchNorm(x, w, b, rm, rv, BatchNormMode.Train, (float)momentum);
                tape.Backward(Ops.Sum(Ops.Mul(y, y)));
            }
            var (mean, _, unbiased) = NormReference.ChannelStats(RefTensor.Of(xd, shape));
            for (int ch = 0; ch < 4; ch++)
            {
                expectedMean[ch] = (1 - momentum) * expectedMean[ch] + momentum * mean[ch];
                expectedVar[ch] = (1 - momentum) * expectedVar[ch] + momentum * unbiased[ch];
            }
        }
        Ref.AssertClose("running mean after 2 steps", rm, new RefTensor(expectedMean, [4]), rtol: 1e-5, atol: 1e-6);
        Ref.AssertClose("running var after 2 steps", rv, new RefTensor(expectedVar, [4]), rtol: 1e-5, atol: 1e-6);
        w.ZeroGrad();
        b.ZeroGrad();
    }

    [Test]
    public void Train_WithoutRunningStats_NormalizesWithBatchStatistics()
    {
        var xd = Rand.Uniform(50, 4 * 3 * 5);
        var y = Ops.BatchNorm(T(xd, 4, 3, 5), null, null, null, null, BatchNormMode.Train);
        var x64 = RefTensor.Of(xd, 4, 3, 5);
        var (mean, biased, _) = NormReference.ChannelStats(x64);
        Ref.AssertClose("batch_norm untracked", y, NormReference.BatchNorm(x64, mean, biased, null, null), rtol: 1e-4, atol: 1e-5);
    }

    [Test]
    public void Frozen_KeepsRunningStats_AndTrainsWeightAndBias()
    {
        int[] shape = [2, 3, 2, 4, 3];
        var xd = Rand.Uniform(60, Ref.Numel(shape));
        var wd = Rand.Uniform(61, 3);
        var bd = Rand.Uniform(62, 3);
        var rmd = Rand.Uniform(63, 3);
        var rvd = Rand.Positive(64, 3);
        var gd = Rand.Uniform(65, Ref.Numel(shape));
        var x = T(xd, shape);
        var w = T(wd, 3);
        var b = T(bd, 3);
        var rm = T(rmd, 3);
        var rv = T(rvd, 3);
        x.RequiresGrad = w.RequiresGrad = b.RequiresGrad = true;
        using (var tape = Tape.Begin())
        {
            var y = Ops.BatchNorm(x, w, b, rm, rv, BatchNormMode.Frozen, momentum: 0.5f);
            tape.Backward(Ops.Sum(Ops.Mul(y, T(gd, shape))));
        }
        Assert.That(rm.ToArray(), Is.EqualTo(rmd), "Frozen must not update the running mean");
        Assert.That(rv.ToArray(), Is.EqualTo(rvd), "Frozen must not update the running var");
        Assert.That(rm.Grad, Is.Null);
        Assert.That(rv.Grad, Is.Null);

        var dw = new double[3];
        var db = new double[3];
        var dx = new double[xd.Length];
        for (int k = 0; k < xd.Length; k++)
        {
            int ch = Ref.Unravel(k, shape)[1];
            double inv = 1.0 / Math.Sqrt(rvd[ch] + 1e-5);
            dw[ch] += gd[k] * (xd[k] - rmd[ch]) * inv;
            db[ch] += gd[k];
            dx[k] = gd[k] * wd[ch] * inv;
        }
        Ref.AssertClose("frozen dweight", w.Grad!, new RefTensor(dw, [3]), rtol: 1e-4, atol: 1e-5);
        Ref.AssertClose("frozen dbias", b.Grad!, new RefTensor(db, [3]), rtol: 1e-4, atol: 1e-5);
        Ref.AssertClose("frozen dx", x.Grad!, new RefTensor(dx, shape), rtol: 1e-4, atol: 1e-5);
        x.ZeroGrad();
        w.ZeroGrad();
        b.ZeroGrad();
    }

    [Test]
    public void Frozen_GradientIgnoresLaterRunningStatUpdates()
    {
        // The op snapshots the statistics: a later Train step updating them in place must not change this node's backward.
        var xd = Rand.Uniform(70, 4 * 3);
        var x = T(xd, 4, 3);
        var w = T([1f, 2f, 3f], 3);
        w.RequiresGrad = true;
        var rm = T([0.1f, 0.2f, 0.3f], 3);
        var rv = T([1f, 2f, 4f], 3);
        using var tape = Tape.Begin();
        var y = Ops.BatchNorm(x, w, null, rm, rv, BatchNormMode.Frozen);
        using (Tape.NoGrad()) Ops.BatchNorm(T(Rand.Uniform(71, 12, 5f, 9f), 4, 3), null, null, rm, rv, BatchNormMode.Train, momentum: 1f);
        tape.Backward(Ops.Sum(y));
        var expected = new double[3];
        float[] m0 = [0.1f, 0.2f, 0.3f], v0 = [1f, 2f, 4f];
        for (int k = 0; k < 12; k++) expected[k % 3] += (xd[k] - m0[k % 3]) / Math.Sqrt(v0[k % 3] + 1e-5);
        Ref.AssertClose("frozen dweight after update", w.Grad!, new RefTensor(expected, [3]), rtol: 1e-4, atol: 1e-5);
        w.ZeroGrad();
    }

    [Test]
    public void EvalAndFrozen_HaveTheSameForward()
    {
        var x = T(Rand.Uniform(80, 2 * 3 * 4), 2, 3, 4);
        var w = T(Rand.Uniform(81, 3), 3);
        var rm = T(Rand.Uniform(82, 3), 3);
        var rv = T(Rand.Positive(83, 3), 3);
        var a = Ops.BatchNorm(x, w, null, rm, rv, BatchNormMode.Eval).ToArray();
        var f = Ops.BatchNorm(x, w, null, rm, rv, BatchNormMode.Frozen).ToArray();
        Assert.That(f, Is.EqualTo(a));
    }

    [Test]
    public void SavedBytes_TrainSavesInputAndChannelStats_BiasOnlySavesNothing()
    {
        int[] shape = [2, 3, 4, 5];
        var x = T(Rand.Uniform(90, Ref.Numel(shape)), shape);
        var w = Tensor.FromArray(Rand.Uniform(91, 3), new Shape(3), Device, MemoryCategory.Parameter);
        var b = Tensor.FromArray(Rand.Uniform(92, 3), new Shape(3), Device, MemoryCategory.Parameter);
        w.RequiresGrad = b.RequiresGrad = true;
        var rm = T(new float[3], 3);
        var rv = T([1f, 1f, 1f], 3);
        using (var tape = Tape.Begin())
        {
            Ops.BatchNorm(x, w, b, rm, rv, BatchNormMode.Train);
            Assert.That(tape.Nodes.Single().SavedBytes, Is.EqualTo(x.Bytes + 2 * 3 * sizeof(float)));
        }
        using (var tape = Tape.Begin())
        {
            Ops.BatchNorm(x, null, b, rm, rv, BatchNormMode.Frozen);
            Assert.That(tape.Nodes.Single().SavedBytes, Is.Zero, "bias only: nothing needed");
        }
        using (var tape = Tape.Begin())
        {
            Ops.BatchNorm(x, null, b, rm, rv, BatchNormMode.Train);
            Assert.That(tape.Nodes.Single().SavedBytes, Is.Zero, "bias only: nothing needed");
        }
        using (var tape = Tape.Begin())
        {
            Ops.BatchNorm(x, w, null, rm, rv, BatchNormMode.Frozen);
            Assert.That(tape.Nodes.Single().SavedBytes, Is.EqualTo(x.Bytes + 2 * 3 * sizeof(float)), "frozen weight grad: x and the statistics");
        }
        w.Dispose();
        b.Dispose();
    }

    [Test]
    public void Errors_NameTheShapesAndTheFix()
    {
        var x = T(new float[2 * 3 * 4], 2, 3, 4);
        var c3 = T(new float[3], 3);
        var c4 = T(new float[4], 4);
        var ones3 = T([1f, 1f, 1f], 3);
        var ex = Assert.Throws<ShapeMismatchException>(() => Ops.BatchNorm(x, c4, null, c3, ones3, BatchNormMode.Train));
        Assert.That(ex!.Message, Does.Contain("batch_norm").And.Contain("weight").And.Contain("3 channels"));
        Assert.Throws<ShapeMismatchException>(() => Ops.BatchNorm(x, null, c4, c3, ones3, BatchNormMode.Eval));
        ex = Assert.Throws<ShapeMismatchException>(() => Ops.BatchNorm(x, null, null, c4, ones3, BatchNormMode.Train));
        Assert.That(ex!.Message, Does.Contain("runningMean").And.Contain("[3]"));
        Assert.Throws<ShapeMismatchException>(() => Ops.BatchNorm(T(new float[3], 3), null, null, c3, ones3, BatchNormMode.Eval));

        ex = Assert.Throws<ShapeMismatchException>(() => Ops.BatchNorm(T(new float[3], 1, 3), null, null, c3, ones3, BatchNormMode.Train));
        Assert.That(ex!.Message, Does.Contain("more than 1 value per channel"));
        Assert.Throws<ShapeMismatchException>(() => Ops.BatchNorm(T(new float[3], 1, 3, 1, 1), null, null, null, null, BatchNormMode.Train));
        Assert.DoesNotThrow(() => Ops.BatchNorm(T(new float[3], 1, 3), null, null, c3, ones3, BatchNormMode.Eval));

        Assert.Throws<ArgumentException>(() => Ops.BatchNorm(x, null, null, null, null, BatchNormMode.Frozen));
        var trainable = T(new float[3], 3);
        trainable.RequiresGrad = true;
        Assert.Throws<ArgumentException>(() => Ops.BatchNorm(x, null, null, trainable, ones3, BatchNormMode.Train));
        Assert.Throws<ArgumentOutOfRangeException>(() => Ops.BatchNorm(x, null, null, c3, ones3, BatchNormMode.Train, momentum: 1.5f));
        Assert.Throws<ArgumentOutOfRangeException>(() => Ops.BatchNorm(x, null, null, c3, ones3, BatchNormMode.Train, eps: -1f));
        Assert.That(c3.ToArray(), Is.EqualTo(new float[3]), "a rejected call must not touch the running statistics");
    }
}
