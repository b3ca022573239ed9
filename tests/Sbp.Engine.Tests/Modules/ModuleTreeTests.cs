using Sbp.Autograd;
using Sbp.Engine.Tests.Support;
using Sbp.Memory;
using Sbp.Nn;
using Sbp.Rng;
using Sbp.Tensors;

namespace Sbp.Engine.Tests.Modules;

/// <summary>Module trees of real layers: PyTorch names and counts, weight tying, parameter substitution, random sources and memory over a step.</summary>
public class ModuleTreeTests : DeviceTest
{
    /// <summary>A module with a parameter, a buffer and a child, to test registration directly.</summary>
    sealed class Probe : Module
    {
        public Probe(Device device, Action<Probe>? register = null) : base(device) => register?.Invoke(this);
        public Tensor Param(string name, Tensor t) => RegisterParameter(name, t);
        public Tensor Buf(string name, Tensor t) => RegisterBuffer(name, t);
        public T Child<T>(string name, T m) where T : Module => RegisterModule(name, m);
        public override Tensor Forward(Tensor x) => IdentityView(x);
    }

    Sequential SmallModel(ulong seed) => new(
        new Linear(5, 7, new RandomSource(seed), device: Device),
        new Mlp(7, 11, 3, new RandomSource(seed + 1), Ops.Relu, device: Device),
        new LayerNorm(3, device: Device));

    [Test]
    public void SequentialHasPyTorchNamesAndCounts()
    {
        using var model = SmallModel(1);
        string[] expected = ["0.weight", "0.bias", "1.fc1.weight", "1.fc1.bias", "1.fc2.weight", "1.fc2.bias", "2.weight", "2.bias"];
        Assert.That(model.NamedParameters().Select(p => p.Name), Is.EqualTo(expected));
        int[][] shapes = [[7, 5], [7], [11, 7], [11], [3, 11], [3], [3], [3]];
        Assert.That(model.NamedParameters().Select(p => p.Tensor.Shape.ToArray()), Is.EqualTo(shapes));
        // 5*7 + 7 + 7*11 + 11 + 11*3 + 3 + 3 + 3
        Assert.That(model.ParameterCount(), Is.EqualTo(172));
        Assert.That(model.NamedModules().Select(m => m.Name),
            Is.EqualTo(new[] { "", "0", "1", "1.fc1", "1.drop1", "1.fc2", "1.drop2", "2" }));
        Assert.That(model.NamedBuffers(), Is.Empty);
        Assert.That(model.StateDict().Keys, Is.EqualTo(expected));
        foreach (var (name, p) in model.NamedParameters())
        {
            Assert.That(p.RequiresGrad, Is.True, name);
            Assert.That(p.IsLeaf, Is.True, name);
            Assert.That(p.Block.Category, Is.EqualTo(MemoryCategory.Parameter), name);
        }
        Assert.That(Device.Pool.InUse(MemoryCategory.Parameter), Is.EqualTo(172 * 4));
        Assert.That(model.StateBytes(), Is.EqualTo(172 * 4));
    }

    [Test]
    public void NestedNamesAreDotted()
    {
        var rng = new RandomSource(4);
        using var outer = new Probe(Device);
        var blocks = outer.Child("blocks", new Sequential(
            new Probe(Device, p => p.Child("attn", new MultiHeadAttention(6, 2, rng, device: Device))),
            new Probe(Device, p => p.Child("attn", new MultiHeadAttention(6, 2, rng, device: Device)))));
        Assert.That(outer.NamedParameters().Select(p => p.Name).Take(5),
            Is.EqualTo(new[] { "blocks.0.attn.qkv.weight", "blocks.0.attn.qkv.bias", "blocks.0.attn.proj.weight", "blocks.0.attn.proj.bias", "blocks.1.attn.qkv.weight" }));
        Assert.That(outer.NamedRandomSources().Select(r => r.Name),
            Is.EqualTo(new[] { "blocks.0.attn.attn_drop.rng", "blocks.0.attn.proj_drop.rng", "blocks.1.attn.attn_drop.rng", "blocks.1.attn.proj_drop.rng" }));
        Assert.That(blocks.Count, Is.EqualTo(2));
    }

    [Test]
    public void RegisteringAViewIsRejected()
    {
        using var probe = new Probe(Device);
        var spare = Tensor.Ones(new Shape(2), Device);
        var view = spare.Reshape(2);
        Assert.That(() => probe.Param("v", view), Throws.ArgumentException.With.Message.Contains("shares its memory"));
        Assert.That(view.Block.Category, Is.EqualTo(Sbp.Memory.MemoryCategory.Temporary), "a rejected tensor is left as it was");
    }
    static void Backward(Module model, Tensor x)
    {
        using var scope = TensorScope.Begin();
        using var tape = Tape.Begin();
        tape.Backward(Ops.Sum(model.Forward(x)));
    }

    [Test]
    public void TiedModulesAreListedOnceAndFreedOnce()
    {
        var rng = new RandomSource(8);
        var shared = new Linear(4, 4, rng, device: Device);
        using var model = new Sequential(shared, new Relu(Device), shared);
        Assert.That(model.NamedParameters().Select(p => p.Name), Is.EqualTo(new[] { "0.weight", "0.bias" }));
        Assert.That(model.ParameterCount(), Is.EqualTo(20));
        var x = T(Rand.Uniform(3, 2 * 4), 2, 4);
        x.RequiresGrad = true;
        Backward(model, x);
        Assert.That(shared.Weight.Grad, Is.Not.Null);
        model.ZeroGrad();
    }

    [Test]
    public void MemoryReturnsToTheParametersAfterAStepAndToZeroAfterDispose()
    {
        var model = new Sequential(
            new Linear(6, 9, new RandomSource(1), device: Device),
            new Gelu(device: Device),
            new MultiHeadAttention(9, 3, new RandomSource(2), device: Device),
            new Mlp(9, 13, 9, new RandomSource(3), device: Device),
            new LayerNorm(9, device: Device));
        long stateBytes = model.StateBytes();
        long before = Device.Pool.InUseBytes;
        using (var scope = TensorScope.Begin())
        using (var tape = Tape.Begin())
        {
            var x = T(Rand.Uniform(4, 2 * 5 * 6), 2, 5, 6);
            tape.Backward(Ops.Mean(model.Forward(x)));
        }
        Assert.That(Device.Pool.InUse(MemoryCategory.Parameter), Is.EqualTo(stateBytes));
        Assert.That(Device.Pool.InUse(MemoryCategory.Gradient), Is.EqualTo(model.Parameters().Sum(p => p.Bytes)), "one gradient per parameter");
        Assert.That(Device.Pool.InUse(MemoryCategory.SavedActivation), Is.Zero);
        Assert.That(Device.Pool.InUse(MemoryCategory.Temporary), Is.Zero);
        model.ZeroGrad();
        Assert.That(Device.Pool.InUseBytes, Is.EqualTo(before).And.EqualTo(stateBytes));
        model.Dispose();
        Assert.That(Device.Pool.InUseBytes, Is.Zero);
        Assert.That(model.IsDisposed, Is.True);
        model.Dispose();   // idempotent
    }

    [Test]
    public void WithParametersSubstitutesAndRestores()
    {
        using var lin = new Linear(3, 2, new RandomSource(1), device: Device);
        var own = lin.Weight;
        var w = T([1, 0, 0, 0, 1, 0], 2, 3);
        var b = T([10, 20], 2);
        var x = T([1, 2, 3], 1, 3);
        using (lin.WithParameters(new Dictionary<string, Tensor> { ["weight"] = w, ["bias"] = b }))
        {
            Assert.That(lin.Weight, Is.SameAs(w));
            Assert.That(lin.NamedParameters().Select(p => p.Tensor), Is.EqualTo(new[] { w, b }));
            using var y = lin.Forward(x);
            Assert.That(y.ToArray(), Is.EqualTo(new[] { 11f, 22f }));
        }
        Assert.That(lin.Weight, Is.SameAs(own));
        Assert.That(w.IsDisposed, Is.False, "substitutes are not owned");
        Assert.That(() => lin.WithParameters(new Dictionary<string, Tensor> { ["weight"] = b, ["nope"] = b }),
            Throws.ArgumentException.With.Message.Contains("'nope' is not a parameter").And.Message.Contains("[2] given for Float32 [2, 3]"));

        // Disposing the module while substituted frees its own tensors, never the substitutes.
        var other = new Linear(3, 2, new RandomSource(2), device: Device);
        var handle = other.WithParameters(new Dictionary<string, Tensor> { ["weight"] = w });
        other.Dispose();
        handle.Dispose();
        Assert.That(w.IsDisposed, Is.False);
    }

    [Test]
    public void RandomSourcesCanBeSavedAndRestored()
    {
        using var drop = new Dropout(0.5f, new RandomSource(9), Device);
        var x = T(Enumerable.Repeat(1f, 64).ToArray(), 64);
        drop.Forward(x).Dispose();
        var saved = drop.NamedRandomSources().ToDictionary(r => r.Name, r => (r.Source.Seed, r.Source.Position));
        Assert.That(saved.Keys, Is.EqualTo(new[] { "rng" }));
        var next = drop.Forward(x).ToArray();

        using var resumed = new Dropout(0.5f, new RandomSource(1234), Device);
        resumed.LoadRandomSources(saved.ToDictionary(kv => kv.Key, kv => new RandomSource(kv.Value.Seed, kv.Value.Position)));
        Assert.That(resumed.Forward(x).ToArray(), Is.EqualTo(next));
        Assert.That(() => resumed.LoadRandomSources(new Dictionary<string, RandomSource> { ["other"] = new(1) }),
            Throws.TypeOf<StateDictMismatchException>().With.Message.Contains("missing").And.Message.Contains("rng").And.Message.Contains("other"));
    }
}
