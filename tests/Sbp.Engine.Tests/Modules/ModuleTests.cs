using Sbp.Autograd;
using Sbp.Engine.Tests.Support;
using Sbp.Memory;
using Sbp.Nn;
using Sbp.Rng;
using Sbp.Tensors;

namespace Sbp.Engine.Tests.Modules;

/// <summary>
/// Module trees: registration, dotted names, weight tying, counts, modes, freezing, memory over a step,
/// state dicts, parameter substitution, random sources and disposal.
/// </summary>
public class ModuleTests : DeviceTest
{
    /// <summary>
    /// scale [3] (parameter), count [2] (buffer), body = Sequential(Linear(3, 5), Relu, Linear(5, 2, no bias)).
    /// PyTorch would name them "scale", "count", "body.0.weight", "body.0.bias", "body.2.weight".
    /// </summary>
    sealed class Toy : Module
    {
        public Toy(Device device, RandomSource rng) : base(device)
        {
            Scale = RegisterParameter("scale", Tensor.Ones(new Shape(3), device));
            Count = RegisterBuffer("count", Tensor.Zeros(new Shape(2), device));
            Body = RegisterModule("body", new Sequential(new Linear(3, 5, rng, device: device), new Relu(device), new Linear(5, 2, rng, bias: false, device: device)));
        }

        public Tensor Scale { get; }
        public Tensor Count { get; }
        public Sequential Body { get; }

        public override Tensor Forward(Tensor x)
        {
            using var scaled = Ops.Mul(x, Scale);
            return Body.Forward(scaled);
        }

        public void RegisterAgain(string name, Tensor t) => RegisterParameter(name, t);
    }

    /// <summary>A module that registers the children its caller gives it, to build arbitrary trees.</summary>
    sealed class Probe : Module
    {
        public Probe(Device device, Action<Probe>? register = null) : base(device) => register?.Invoke(this);
        public T Child<T>(string name, T m) where T : Module => RegisterModule(name, m);
        public override Tensor Forward(Tensor x) => IdentityView(x);
    }

    Toy NewToy(ulong seed = 1) => new(Device, new RandomSource(seed));

    [Test]
    public void DottedNamesFollowPyTorch()
    {
        using var m = NewToy();
        Assert.That(m.NamedParameters().Select(p => p.Name), Is.EqualTo(new[] { "scale", "body.0.weight", "body.0.bias", "body.2.weight" }));
        Assert.That(m.NamedBuffers().Select(p => p.Name), Is.EqualTo(new[] { "count" }));
        Assert.That(m.NamedModules().Select(p => p.Name), Is.EqualTo(new[] { "", "body", "body.0", "body.1", "body.2" }));
        Assert.That(m.StateDict().Keys, Is.EqualTo(new[] { "scale", "count", "body.0.weight", "body.0.bias", "body.2.weight" }));
        Assert.That(m.NamedParameters().Select(p => p.Tensor.Shape.ToArray()),
            Is.EqualTo(new[] { new[] { 3 }, new[] { 5, 3 }, new[] { 5 }, new[] { 2, 5 } }));
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
    public void ParameterCountIsHandComputed()
    {
        using var m = NewToy();
        Assert.That(m.ParameterCount(), Is.EqualTo(3 + 15 + 5 + 10));
        Assert.That(m.StateBytes(), Is.EqualTo((3 + 2 + 15 + 5 + 10) * 4));
        m.Freeze(name => name.StartsWith("body.0.", StringComparison.Ordinal));
        Assert.That(m.ParameterCount(trainableOnly: true), Is.EqualTo(3 + 10));
        Assert.That(m.ParameterCount(), Is.EqualTo(33));
    }

    [Test]
    public void ParametersAndBuffersAreOwnedLeavesInTheParameterCategory()
    {
        Toy m;
        using (TensorScope.Begin()) m = NewToy();   // the scope ending must not free the module's state
        using (m)
        {
            foreach (var (name, p) in m.NamedParameters())
            {
                Assert.That(p.IsDisposed, Is.False, name);
                Assert.That(p.IsLeaf && p.RequiresGrad, Is.True, name);
                Assert.That(p.Block.Category, Is.EqualTo(MemoryCategory.Parameter), name);
            }
            foreach (var (name, b) in m.NamedBuffers())
            {
                Assert.That(b.RequiresGrad, Is.False, name);
                Assert.That(b.Block.Category, Is.EqualTo(MemoryCategory.Parameter), name);
            }
            Assert.That(Device.Pool.InUse(MemoryCategory.Parameter), Is.EqualTo(m.StateBytes()));
        }
        Assert.That(Device.Pool.InUseBytes, Is.EqualTo(0), "Dispose frees every parameter and buffer");
    }

    [Test]
    public void TrainAndEvalSwitchTheWholeTree()
    {
        using var m = NewToy();
        Assert.That(m.NamedModules().All(x => x.Module.Training), Is.True);
        Assert.That(m.Eval(), Is.SameAs(m));
        Assert.That(m.NamedModules().Any(x => x.Module.Training), Is.False);
        m.Train();
        Assert.That(m.NamedModules().All(x => x.Module.Training), Is.True);
        m.Body.Train(false);
        Assert.That(m.Training && !m.Body.Training && !m.Body[0].Training, Is.True);
    }

    [Test]
    public void FreezeStopsGradientsAndUnfreezeRestoresThem()
    {
        using var m = NewToy();
        var x = T(Rand.Uniform(3, 4 * 3), 4, 3);
        x.RequiresGrad = true;
        m.Freeze();
        Assert.That(m.ParameterCount(trainableOnly: true), Is.Zero);
        Backward(m, x);
        Assert.That(m.Parameters().All(p => p.Grad is null), Is.True, "frozen parameters get no gradient");
        Assert.That(x.Grad, Is.Not.Null, "the input still gets one");
        Assert.That(Device.Pool.InUse(MemoryCategory.Gradient), Is.EqualTo(x.Grad!.Bytes));

        m.Unfreeze();
        m.Freeze(name => name == "body.0.bias");
        Backward(m, x);
        foreach (var (name, p) in m.NamedParameters())
            Assert.That(p.Grad is null, Is.EqualTo(name == "body.0.bias"), name);

        m.ZeroGrad();
        Assert.That(m.Parameters().All(p => p.Grad is null), Is.True);
        x.ZeroGrad();
        Assert.That(Device.Pool.InUse(MemoryCategory.Gradient), Is.Zero);
    }

    static void Backward(Module m, Tensor x)
    {
        using var scope = TensorScope.Begin();
        using var tape = Tape.Begin();
        tape.Backward(Ops.Sum(m.Forward(x)));
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
        Assert.That(model.Parameters().All(p => p.Grad is not null), Is.True, "backward reaches every parameter");
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
    public void StateDictRoundTripIsBitExact()
    {
        using var a = NewToy(1);
        using var b = NewToy(2);
        Init.Normal(a.Count, 0f, 1f, new RandomSource(3));
        Init.Normal(a.Scale, 0f, 1f, new RandomSource(4));
        Assert.That(b.StateDict()["body.0.weight"].ToArray(), Is.Not.EqualTo(a.StateDict()["body.0.weight"].ToArray()));
        b.LoadStateDict(a.StateDict());
        foreach (var (name, t) in a.StateDict())
            Assert.That(Bits(b.StateDict()[name]), Is.EqualTo(Bits(t)), name);
        var x = T(Rand.Uniform(5, 2 * 3), 2, 3);
        Assert.That(Bits(b.Forward(x)), Is.EqualTo(Bits(a.Forward(x))));

        // Across devices (through the host) too.
        var other = Device.CreateCpu("other");
        using (var c = new Toy(other, new RandomSource(9)))
        {
            c.LoadStateDict(a.StateDict());
            foreach (var (name, t) in a.StateDict())
                Assert.That(Bits(c.StateDict()[name]), Is.EqualTo(Bits(t)), name);
        }
        Assert.That(other.Pool.InUseBytes, Is.Zero);
    }

    static int[] Bits(Tensor t) => t.ToArray().Select(BitConverter.SingleToInt32Bits).ToArray();

    [Test]
    public void LoadReportsMissingUnexpectedAndWrongShapeTogether()
    {
        using var a = NewToy(1);
        using var b = NewToy(2);
        var before = b.StateDict().ToDictionary(kv => kv.Key, kv => kv.Value.ToArray());
        var state = new Dictionary<string, Tensor>(a.StateDict());
        state.Remove("body.0.bias");                                            // missing
        state["body.3.weight"] = T(new float[4], 2, 2);                         // unexpected
        state["body.2.weight"] = T(new float[10], 5, 2);                        // wrong shape (transposed)
        var e = Assert.Throws<StateDictMismatchException>(() => b.LoadStateDict(state))!;
        Assert.That(e.Message, Does.Contain("body.0.bias").And.Contain("body.3.weight").And.Contain("body.2.weight")
            .And.Contain("[5, 2]").And.Contain("[2, 5]"));
        Assert.That(e.Missing, Is.EqualTo(new[] { "body.0.bias" }));
        Assert.That(e.Unexpected, Is.EqualTo(new[] { "body.3.weight" }));
        Assert.That(e.Mismatched, Has.Count.EqualTo(1));
        foreach (var (name, t) in b.StateDict())
            Assert.That(t.ToArray(), Is.EqualTo(before[name]), $"{name}: nothing is loaded when the check fails");

        // Not strict: missing and unexpected keys are skipped, a wrong shape is still an error.
        var e2 = Assert.Throws<StateDictMismatchException>(() => b.LoadStateDict(state, strict: false))!;
        Assert.That(e2.Missing, Is.Empty);
        Assert.That(e2.Mismatched, Has.Count.EqualTo(1));
        state.Remove("body.2.weight");
        b.LoadStateDict(state, strict: false);
        Assert.That(b.StateDict()["body.0.weight"].ToArray(), Is.EqualTo(a.StateDict()["body.0.weight"].ToArray()));
        Assert.That(b.StateDict()["body.0.bias"].ToArray(), Is.EqualTo(before["body.0.bias"]));
    }

    [Test]
    public void LoadRejectsAWrongDtype()
    {
        using var m = NewToy();
        var state = new Dictionary<string, Tensor>(m.StateDict()) { ["count"] = Tensor.FromArray(new[] { 1, 2 }, new Shape(2), Device) };
        var e = Assert.Throws<StateDictMismatchException>(() => m.LoadStateDict(state))!;
        Assert.That(e.Message, Does.Contain("count").And.Contain("Int32"));
    }

    [Test]
    public void RegistrationErrorsAreClear()
    {
        using var m = NewToy();
        var dotted = Tensor.Zeros(new Shape(2), Device);
        Assert.That(() => m.RegisterAgain("a.b", dotted), Throws.ArgumentException.With.Message.Contains("'.'"));
        Assert.That(() => m.RegisterAgain("scale", dotted), Throws.ArgumentException.With.Message.Contains("already taken"));
        using var leaf = Tensor.Ones(new Shape(2), Device);
        leaf.RequiresGrad = true;
        using (Tape.Begin())
        {
            var produced = Ops.Mul(leaf, 2f);
            Assert.That(() => m.RegisterAgain("made", produced), Throws.ArgumentException.With.Message.Contains("leaf"));
        }
        var onOther = Tensor.Zeros(new Shape(2), Device.CreateCpu("elsewhere"));
        Assert.That(() => m.RegisterAgain("other", onOther), Throws.ArgumentException.With.Message.Contains("device"));
        onOther.Dispose();
        var spare = Tensor.Ones(new Shape(2), Device);
        var view = spare.Reshape(2);
        Assert.That(() => m.RegisterAgain("v", view), Throws.ArgumentException.With.Message.Contains("shares its memory"));
        Assert.That(view.Block.Category, Is.EqualTo(MemoryCategory.Temporary), "a rejected tensor is left as it was");
    }

    [Test]
    public void ForwardOutputsAreTheCallersAndIntermediatesAreFreed()
    {
        using var m = NewToy();
        long state = Device.Pool.InUseBytes;
        var x = T(Rand.Uniform(6, 4 * 3), 4, 3);
        long withInput = Device.Pool.InUseBytes;
        using (var y = m.Forward(x))
            Assert.That(Device.Pool.InUseBytes - withInput, Is.EqualTo(y.Bytes), "only the output is left");
        x.Dispose();
        Assert.That(Device.Pool.InUseBytes, Is.EqualTo(state));

        using var id = new Sequential(Device);
        using var v = id.Forward(T([1f, 2f], 2));
        Assert.That(v.ToArray(), Is.EqualTo(new[] { 1f, 2f }), "an empty Sequential is the identity (a view)");
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
