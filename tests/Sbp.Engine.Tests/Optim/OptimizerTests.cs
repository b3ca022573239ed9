using Sbp.Engine.Tests.Support;
using Sbp.Memory;
using Sbp.Optim;
using Sbp.Tensors;

namespace Sbp.Engine.Tests.Optim;

public class OptimizerTests : DeviceTest
{
    const int Steps = 5;

    /// <summary>A parameter (requires grad) with the given values.</summary>
    Tensor Param(float[] data, params int[] shape)
    {
        var p = T(data, shape);
        p.RequiresGrad = true;
        return p;
    }

    /// <summary>Replaces the gradient of <paramref name="p"/> (as a Backward would have produced).</summary>
    void SetGrad(Tensor p, float[] g)
    {
        p.ZeroGrad();
        p.Grad = Tensor.FromArray(g, p.Shape, Device, MemoryCategory.Gradient).DetachFromScope();
    }

    static float[][] Grads(int seed, int n) => Enumerable.Range(0, Steps).Select(k => Rand.Normal(seed + k, n)).ToArray();

    [TestCase(0f, 0f, false, 0f, TestName = "Sgd_plain")]
    [TestCase(0.9f, 0f, false, 0f, TestName = "Sgd_momentum")]
    [TestCase(0.8f, 0.3f, false, 0f, TestName = "Sgd_momentum_dampening")]
    [TestCase(0.9f, 0f, true, 0f, TestName = "Sgd_nesterov")]
    [TestCase(0f, 0f, false, 0.1f, TestName = "Sgd_weight_decay")]
    [TestCase(0.9f, 0f, true, 0.05f, TestName = "Sgd_nesterov_weight_decay")]
    public void SgdMatchesFloat64Reference(float momentum, float dampening, bool nesterov, float weightDecay)
    {
        const float lr = 0.05f;
        const int n = 7;
        var p0 = Rand.Normal(1, n);
        var grads = Grads(10, n);
        var p = Param(p0, 7);
        var idle = Param(Rand.Normal(2, 3), 3);   // never gets a gradient
        using var opt = new Sgd([("w", p), ("idle", idle)], lr, momentum, dampening, nesterov, weightDecay);

        var rp = p0.Select(v => (double)v).ToArray();
        var buf = new double[n];
        for (int k = 0; k < Steps; k++)
        {
            SetGrad(p, grads[k]);
            opt.Step();
            for (int i = 0; i < n; i++)
            {
                double d = grads[k][i] + (double)weightDecay * rp[i];
                if (momentum != 0f)
                {
                    buf[i] = k == 0 ? d : momentum * buf[i] + (1.0 - dampening) * d;
                    d = nesterov ? d + momentum * buf[i] : buf[i];
                }
                rp[i] -= lr * d;
            }
            Assert.That(p.ToArray(), Is.EqualTo(rp).Within(2e-6), $"step {k + 1}");
        }
        Assert.That(idle.ToArray(), Is.EqualTo(Rand.Normal(2, 3)), "a parameter without a gradient is not touched");
        Assert.That(opt.StepCount, Is.EqualTo(Steps));
        var state = opt.StateDict();
        Assert.That(state.Tensors.Keys, momentum == 0f ? Is.Empty : Is.EquivalentTo(new[] { "momentum_buffer.w" }));
        if (momentum != 0f)
            Assert.That(state.Tensors["momentum_buffer.w"].ToArray(), Is.EqualTo(buf).Within(2e-6));
    }

    [Test]
    public void AdamWMatchesFloat64Reference()
    {
        const float lr = 0.01f, b1 = 0.9f, b2 = 0.999f, eps = 1e-8f, wd = 0.1f;
        string[] names = ["w", "b"];
        int[][] shapes = [[3, 5], [5]];
        var init = new[] { Rand.Normal(20, 15), Rand.Normal(21, 5) };
        var grads = new[] { Grads(30, 15), Grads(40, 5) };
        var ps = new[] { Param(init[0], shapes[0]), Param(init[1], shapes[1]) };
        using var opt = new AdamW([(names[0], ps[0]), (names[1], ps[1])], lr, b1, b2, eps, wd);
        Assert.That(Device.Pool.InUse(MemoryCategory.OptimizerState), Is.EqualTo(0), "state is created lazily");

        for (int k = 0; k < Steps; k++)
        {
            for (int j = 0; j < ps.Length; j++) SetGrad(ps[j], grads[j][k]);
            opt.Step();
            if (k == 0) Assert.That(Device.Pool.InUse(MemoryCategory.OptimizerState), Is.GreaterThanOrEqualTo(2 * (15 + 5) * 4L), "two moments per parameter");
        }

        var state = opt.StateDict();
        for (int j = 0; j < ps.Length; j++)
        {
            // float64 reference of PyTorch's AdamW.
            var p = init[j].Select(x => (double)x).ToArray();
            var m = new double[p.Length];
            var v = new double[p.Length];
            for (int k = 0; k < Steps; k++)
            {
                int t = k + 1;
                double bc1 = 1 - Math.Pow(b1, t), bc2 = 1 - Math.Pow(b2, t);
                for (int i = 0; i < p.Length; i++)
                {
                    double g = grads[j][k][i];
                    p[i] *= 1 - (double)lr * wd;
                    m[i] = b1 * m[i] + (1 - (double)b1) * g;
                    v[i] = b2 * v[i] + (1 - (double)b2) * g * g;
                    p[i] -= lr / bc1 * m[i] / (Math.Sqrt(v[i]) / Math.Sqrt(bc2) + eps);
                }
            }
            Assert.That(ps[j].ToArray(), Is.EqualTo(p).Within(1e-6), $"param {names[j]}");
            Assert.That(state.Tensors["exp_avg." + names[j]].ToArray(), Is.EqualTo(m).Within(1e-6));
            Assert.That(state.Tensors["exp_avg_sq." + names[j]].ToArray(), Is.EqualTo(v).Within(1e-6));
            Assert.That(state.Scalars["step." + names[j]], Is.EqualTo(Steps));
        }
        opt.Dispose();
        Assert.That(Device.Pool.InUse(MemoryCategory.OptimizerState), Is.EqualTo(0), "Dispose frees the state");
    }

    [Test]
    public void AdamWCountsStepsPerParameterAndSkipsNullGrads()
    {
        var a = Param(Rand.Normal(3, 4), 4);
        var b = Param(Rand.Normal(4, 4), 4);
        using var opt = new AdamW([("a", a), ("b", b)], 0.1f, weightDecay: 0f);
        SetGrad(a, Rand.Normal(5, 4));
        opt.Step();                       // b has no grad: untouched, no state
        Assert.That(b.ToArray(), Is.EqualTo(Rand.Normal(4, 4)));
        Assert.That(opt.StateDict().Tensors.Keys, Is.EquivalentTo(new[] { "exp_avg.a", "exp_avg_sq.a" }));
        // b's first update uses bias correction for t = 1: |delta| = lr * |g| / (|g| + eps) ~ lr.
        SetGrad(b, [1f, -1f, 2f, -2f]);
        a.ZeroGrad();
        opt.Step();
        var delta = b.ToArray().Zip(Rand.Normal(4, 4), (x, y) => (double)x - y).ToArray();
        Assert.That(delta, Is.EqualTo(new[] { -0.1, 0.1, -0.1, 0.1 }).Within(1e-6));
        Assert.That(opt.StateDict().Scalars["step.a"], Is.EqualTo(1));
        Assert.That(opt.StateDict().Scalars["step.b"], Is.EqualTo(1));
        Assert.That(opt.StepCount, Is.EqualTo(2));
    }

    [Test]
    public void SplitDecayPutsNormsBiasesAndListedNamesInNoDecayGroup()
    {
        var w = Param(new float[6], 2, 3);
        var bias = Param(new float[2], 2);
        var norm = Param(new float[3], 3);
        var pos = Param(new float[6], 1, 2, 3);
        var conv = Param(new float[8], 2, 1, 2, 2);
        var groups = ParamGroup.SplitDecay([("fc.weight", w), ("fc.bias", bias), ("norm.weight", norm), ("pos_embed", pos), ("conv.weight", conv)],
            0.05f, ["pos_embed"]);
        Assert.That(groups, Has.Length.EqualTo(2));
        Assert.That(groups[0].Parameters.Select(p => p.Name), Is.EqualTo(new[] { "fc.weight", "conv.weight" }));
        Assert.That(groups[0].WeightDecay, Is.EqualTo(0.05f));
        Assert.That(groups[1].Parameters.Select(p => p.Name), Is.EqualTo(new[] { "fc.bias", "norm.weight", "pos_embed" }));
        Assert.That(groups[1].WeightDecay, Is.EqualTo(0f));
    }

    [Test]
    public void GroupsApplyTheirOwnWeightDecayAndLearningRate()
    {
        // Zero gradients: AdamW's update is 0, so only the decoupled decay p *= 1 - lr*wd acts.
        var w = Param([1f, 2f, 3f, 4f], 2, 2);
        var b = Param([1f, 2f], 2);
        var fixedLr = Param([1f, 1f, 1f, 1f], 2, 2);
        var groups = ParamGroup.SplitDecay([("w", w), ("b", b)], 0.5f).Append(new ParamGroup([("f", fixedLr)], learningRate: 0.2f, weightDecay: 1f)).ToArray();
        using var opt = new AdamW(groups, learningRate: 0.1f, weightDecay: 0.3f);
        foreach (var p in new[] { w, b, fixedLr }) SetGrad(p, new float[p.Numel]);
        opt.Step();
        Assert.That(w.ToArray(), Is.EqualTo(new[] { 0.95f, 1.9f, 2.85f, 3.8f }).Within(1e-6));
        Assert.That(b.ToArray(), Is.EqualTo(new[] { 1f, 2f }), "no decay on biases");
        Assert.That(fixedLr.ToArray(), Is.EqualTo(new[] { 0.8f, 0.8f, 0.8f, 0.8f }).Within(1e-6), "group lr 0.2, wd 1");
        opt.LearningRate = 0.2f;          // a schedule moves groups without their own rate
        opt.Step();
        Assert.That(w.ToArray(), Is.EqualTo(new[] { 0.855f, 1.71f, 2.565f, 3.42f }).Within(1e-5));
        Assert.That(fixedLr.ToArray(), Is.EqualTo(new[] { 0.64f, 0.64f, 0.64f, 0.64f }).Within(1e-6));
    }

    [Test]
    public void ConstructorRejectsDuplicateNamesAndTensors()
    {
        var a = Param([1f], 1);
        var b = Param([1f], 1);
        Assert.That(() => new Sgd([("x", a), ("x", b)], 0.1f), Throws.ArgumentException.With.Message.Contains("'x' appears twice"));
        Assert.That(() => new Sgd([("x", a), ("y", a)], 0.1f), Throws.ArgumentException.With.Message.Contains("same tensor"));
        Assert.That(() => new Sgd([("x", a)], 0.1f, nesterov: true), Throws.ArgumentException.With.Message.Contains("Nesterov"));
    }

    [Test]
    public void StateDictRoundTripContinuesBitExactly()
    {
        var p0 = Rand.Normal(7, 6);
        var grads = Grads(50, 6);
        var a = Param(p0, 2, 3);
        var b = Param(p0, 2, 3);
        using var optA = new AdamW([("w", a)], 0.01f);
        for (int k = 0; k < 3; k++) { SetGrad(a, grads[k]); optA.Step(); }

        using var optB = new AdamW([("w", b)], 0.5f);
        b.Backend.Copy(a, b);
        optB.LoadStateDict(optA.StateDict());
        Assert.That(optB.StepCount, Is.EqualTo(3));
        Assert.That(optB.LearningRate, Is.EqualTo(0.01f));
        for (int k = 3; k < Steps; k++)
        {
            SetGrad(a, grads[k]); optA.Step();
            SetGrad(b, grads[k]); optB.Step();
        }
        Assert.That(b.ToArray(), Is.EqualTo(a.ToArray()));
    }

    [Test]
    public void LoadStateDictReportsEveryProblem()
    {
        var w = Param(new float[6], 2, 3);
        using var opt = new AdamW([("w", w)]);
        using var wrong = Tensor.Zeros(new Shape(3, 2), Device);
        using var stray = Tensor.Zeros(new Shape(2), Device);
        var state = new OptimizerState(
            new Dictionary<string, Tensor> { ["exp_avg.w"] = wrong, ["exp_avg.nope"] = stray, ["momentum_buffer.w"] = stray },
            new Dictionary<string, double> { ["step.nope"] = 1 });
        var ex = Assert.Throws<OptimizerStateMismatchException>(() => opt.LoadStateDict(state));
        Assert.That(ex!.Problems, Has.Count.EqualTo(5));
        Assert.That(ex.Message, Does.Contain("exp_avg.w").And.Contain("[3, 2]").And.Contain("'nope'").And.Contain("momentum_buffer.w").And.Contain("'step'"));
    }
}
