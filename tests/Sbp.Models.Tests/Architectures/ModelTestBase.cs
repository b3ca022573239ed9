using Sbp.Autograd;
using Sbp.Engine.Tests.Support;
using Sbp.Models.Architectures;
using Sbp.Nn;
using Sbp.Rng;
using Sbp.Stochastic;
using Sbp.Tensors;

namespace Sbp.Models.Tests.Architectures;

/// <summary>What one forward and backward of a model produced: the output, the loss, and every gradient by name ("input" for x).</summary>
public sealed record RunResult(float[] Output, float Loss, IReadOnlyDictionary<string, float[]> Grads, IReadOnlyList<string> Ops);

/// <summary>
/// Each test on its own CPU device; models built there are disposed after the test and the
/// device's pool must then be empty. Runs use loss = sum(y * R) with a fixed random R, so every
/// output element sends a distinct gradient.
/// </summary>
public abstract class ModelTestBase
{
    readonly List<IDisposable> _owned = [];

    protected Device Device { get; private set; } = null!;

    [SetUp]
    public void BeginModelTest() => Device = Device.CreateCpu($"models {TestContext.CurrentContext.Test.Name}");

    [TearDown]
    public void EndModelTest()
    {
        foreach (var d in _owned) d.Dispose();
        _owned.Clear();
        Assert.That(Device.Pool.InUseBytes, Is.EqualTo(0), $"{Device.Pool.InUseBytes} bytes still in use on the test's device after its models were disposed (a leak).");
    }

    protected VideoModel Build(string config, ulong seed = 7)
    {
        var m = ModelFactory.Create(config, new RandomSource(seed), Device);
        _owned.Add(m);
        return m;
    }

    protected T Own<T>(T disposable) where T : IDisposable
    {
        _owned.Add(disposable);
        return disposable;
    }

    /// <summary>A batch of <paramref name="batch"/> samples of the model's sample shape, seeded.</summary>
    protected static (float[] Data, int[] Shape) Input(VideoModel model, int batch = 1, int seed = 11)
    {
        int[] shape = [batch, .. model.SampleShape];
        return (Rand.Uniform(seed, Ref.Numel(shape)), shape);
    }

    /// <summary>Forward (<paramref name="forward"/>, which sets up SBP as the test wants) and backward of sum(y * R); gradients of every parameter and the input.</summary>
    protected RunResult Run(Module model, (float[] Data, int[] Shape) input, Func<Tensor, Tensor> forward)
    {
        foreach (var p in model.Parameters()) p.ZeroGrad();
        using var scope = TensorScope.Begin();
        var x = Tensor.FromArray(input.Data, new Shape(input.Shape), Device);
        x.RequiresGrad = true;
        float[] output;
        float loss;
        List<string> ops;
        using (var tape = Tape.Begin())
        {
            var y = forward(x);
            output = y.ToArray();
            var r = Tensor.FromArray(Rand.AwayFromZero(5, checked((int)y.Numel), 0.5f, 1.5f), y.Shape, Device);
            var l = Ops.Sum(Ops.Mul(y, r));
            loss = l.Item();
            ops = tape.Nodes.Select(n => n.Op).ToList();
            tape.Backward(l);
        }
        var grads = new Dictionary<string, float[]> { ["input"] = x.Grad!.ToArray() };
        foreach (var (name, p) in model.NamedParameters())
            grads[name] = p.Grad?.ToArray() ?? new float[p.Numel];
        foreach (var p in model.Parameters()) p.ZeroGrad();
        return new RunResult(output, loss, grads, ops);
    }

    protected RunResult Run(VideoModel model, (float[] Data, int[] Shape) input, SbpPolicy? sbp, long step = 3) =>
        Run(model, input, x => model.Forward(x, sbp, step));

    /// <summary>The CVPR mask (strided, fixed centred offset) or another kind at keep 1/2, with the given region mode.</summary>
    protected static SbpPolicy Policy(SbpPlacement placement, RegionMode mode, MaskKind kind = MaskKind.Strided, double keep = 0.5, bool shared = true) =>
        new(new KeepMaskPolicy(kind, keep, Seed: 42) { Scope = shared ? MaskScope.Step : MaskScope.Layer }, placement, mode);

    protected static void AssertClose(string what, float[] actual, float[] expected, double rtol = 1e-4, double atol = 1e-5)
    {
        Assert.That(actual, Has.Length.EqualTo(expected.Length), $"{what}: lengths differ.");
        int bad = -1;
        double worst = 0;
        for (int i = 0; i < actual.Length; i++)
        {
            double diff = Math.Abs(actual[i] - expected[i]);
            if (!(diff <= atol + rtol * Math.Abs(expected[i])) && (bad < 0 || diff > worst)) { bad = i; worst = diff; }
        }
        Assert.That(bad, Is.EqualTo(-1), () => $"{what}: element {bad} is {actual[bad]} but expected {expected[bad]} (|diff| {worst:G3}; rtol {rtol}, atol {atol}).");
    }

    protected static void AssertSameGrads(string what, RunResult actual, RunResult expected, double rtol = 1e-4, double atol = 1e-5)
    {
        Assert.That(actual.Grads.Keys, Is.EquivalentTo(expected.Grads.Keys), $"{what}: gradient sets differ.");
        foreach (var (name, g) in expected.Grads) AssertClose($"{what}: gradient of {name}", actual.Grads[name], g, rtol, atol);
    }
}
