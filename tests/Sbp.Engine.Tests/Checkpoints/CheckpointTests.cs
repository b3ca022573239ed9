using Sbp.Autograd;
using Sbp.Engine.Tests.Support;
using Sbp.IO;
using Sbp.Memory;
using Sbp.Optim;
using Sbp.Rng;
using Sbp.Tensors;

namespace Sbp.Engine.Tests.Checkpoints;

public class CheckpointTests : DeviceTest
{
    const int Samples = 12, Features = 5, Hidden = 7, Classes = 3, Batch = 4;
    string _dir = null!;

    [SetUp]
    public void MakeDir() => _dir = Directory.CreateTempSubdirectory("sbp-checkpoint-").FullName;

    [TearDown]
    public void RemoveDir() => Directory.Delete(_dir, recursive: true);

    /// <summary>A two-layer MLP on raw tensors, its AdamW optimizer, schedule and data-order random source.</summary>
    sealed class Trainer : IDisposable
    {
        public readonly Dictionary<string, Tensor> Params = new();
        public readonly AdamW Optimizer;
        public readonly WarmupCosine Schedule = new(0.05f, warmupSteps: 2, totalSteps: 6, minLr: 0.005f);
        public RandomSource Rng;

        public Trainer(Device device, int initSeed, RandomSource rng)
        {
            Add(device, "fc1.weight", Rand.Normal(initSeed, Hidden * Features, 0.5f), Hidden, Features);
            Add(device, "fc1.bias", Rand.Normal(initSeed + 1, Hidden, 0.1f), Hidden);
            Add(device, "fc2.weight", Rand.Normal(initSeed + 2, Classes * Hidden, 0.5f), Classes, Hidden);
            Add(device, "fc2.bias", Rand.Normal(initSeed + 3, Classes, 0.1f), Classes);
            Optimizer = new AdamW(ParamGroup.SplitDecay(Params.Select(kv => (kv.Key, kv.Value)), 0.05f), learningRate: 0f);
            Rng = rng;
        }

        void Add(Device device, string name, float[] data, params int[] shape)
        {
            var t = Tensor.FromArray(data, new Shape(shape), device, MemoryCategory.Parameter).DetachFromScope();
            t.RequiresGrad = true;
            Params[name] = t;
        }

        public void TrainEpoch(Device device, float[] x, int[] y)
        {
            // Shuffle with the engine's random source (Fisher-Yates).
            var order = Enumerable.Range(0, Samples).ToArray();
            for (int i = Samples - 1; i > 0; i--)
            {
                int j = Math.Min(i, (int)(Rng.NextUniform() * (i + 1)));
                (order[i], order[j]) = (order[j], order[i]);
            }
            for (int s = 0; s < Samples; s += Batch)
            {
                using var scope = TensorScope.Begin();
                var rows = order[s..(s + Batch)];
                var xb = Tensor.FromArray(rows.SelectMany(r => x.Skip(r * Features).Take(Features)).ToArray(), new Shape(Batch, Features), device);
                // Input noise from the random source: the RNG position matters for the result.
                var noise = new float[Batch * Features];
                Rng.Normal(noise, 0f, 0.05f);
                xb = Ops.Add(xb, Tensor.FromArray(noise, xb.Shape, device));
                var yb = Tensor.FromArray(rows.Select(r => y[r]).ToArray(), new Shape(Batch), device);
                using (var tape = Tape.Begin())
                {
                    var h = Ops.Gelu(Ops.Linear(xb, Params["fc1.weight"], Params["fc1.bias"]));
                    tape.Backward(Ops.CrossEntropy(Ops.Linear(h, Params["fc2.weight"], Params["fc2.bias"]), yb));
                }
                GradClip.ClipByGlobalNorm(Params.Values, 1.0f);
                Schedule.Apply(Optimizer);
                Optimizer.Step();
                Optimizer.ZeroGrad();
            }
        }

        public void Dispose()
        {
            Optimizer.Dispose();
            foreach (var p in Params.Values) p.Dispose();
        }
    }

    static (float[] X, int[] Y) Data() =>
        (Rand.Normal(100, Samples * Features), Enumerable.Range(0, Samples).Select(i => (i * 5 + 1) % Classes).ToArray());

    static int[] Bits(Tensor t) => t.ToArray().Select(BitConverter.SingleToInt32Bits).ToArray();

    [Test]
    public void TwoEpochsEqualOneEpochSaveLoadIntoFreshObjectsAndOneMore()
    {
        var (x, y) = Data();
        var path = Path.Combine(_dir, "run.safetensors");

        using var straight = new Trainer(Device, 1, new RandomSource(42));
        straight.TrainEpoch(Device, x, y);
        straight.TrainEpoch(Device, x, y);

        using (var first = new Trainer(Device, 1, new RandomSource(42)))
        {
            first.TrainEpoch(Device, x, y);
            Checkpoint.Save(path, first.Params, first.Optimizer,
                new CheckpointInfo(first.Optimizer.StepCount, first.Optimizer.StepCount, new Dictionary<string, RandomSource> { ["data"] = first.Rng }));
        }

        // Fresh objects: other initial weights, a new optimizer without state, an unrelated random source.
        using var resumed = new Trainer(Device, 999, new RandomSource(7));
        var info = Checkpoint.Load(path, resumed.Params, resumed.Optimizer);
        resumed.Rng = info.RandomSources["data"];
        Assert.That(info.Step, Is.EqualTo(3));
        Assert.That(info.SchedulePosition, Is.EqualTo(3));
        Assert.That(resumed.Optimizer.StepCount, Is.EqualTo(3));
        resumed.TrainEpoch(Device, x, y);

        foreach (var (name, p) in straight.Params)
            Assert.That(Bits(resumed.Params[name]), Is.EqualTo(Bits(p)), $"parameter {name} bit-exact");
        var sa = straight.Optimizer.StateDict();
        var sb = resumed.Optimizer.StateDict();
        Assert.That(sb.Tensors.Keys, Is.EquivalentTo(sa.Tensors.Keys));
        foreach (var (name, t) in sa.Tensors) Assert.That(Bits(sb.Tensors[name]), Is.EqualTo(Bits(t)), $"optimizer state {name}");
        Assert.That(sb.Scalars, Is.EquivalentTo(sa.Scalars));
        Assert.That(resumed.Rng.Position, Is.EqualTo(straight.Rng.Position));
        Assert.That(Device.Pool.InUse(MemoryCategory.OptimizerState), Is.EqualTo(2 * resumed.Optimizer.StateBytes));
    }

    Dictionary<string, Tensor> Model(params (string Name, int[] Shape)[] tensors) =>
        tensors.ToDictionary(t => t.Name, t => T(Rand.Normal(t.Name.Length, (int)new Shape(t.Shape).Numel), t.Shape));

    [Test]
    public void LoadReportsEveryMismatchAtOnceAndLoadsNothing()
    {
        var path = Path.Combine(_dir, "m.safetensors");
        var model = Model(("w", [2, 3]), ("b", [3]), ("steps", [1]));
        using (var opt = new AdamW([("w", model["w"])]))
        {
            model["w"].Grad = Tensor.Ones(new Shape(2, 3), Device, MemoryCategory.Gradient).DetachFromScope();
            opt.Step();
            Checkpoint.Save(path, model, opt, new CheckpointInfo(1, 1));
        }

        var other = Model(("w", [3, 2]), ("c", [3]), ("steps", [1]));
        var before = other.ToDictionary(kv => kv.Key, kv => kv.Value.ToArray());
        using var sgd = new Sgd([("w", other["w"])], 0.1f, momentum: 0.9f);
        var ex = Assert.Throws<CheckpointMismatchException>(() => Checkpoint.Load(path, other, sgd))!;
        Assert.That(ex.Message, Does.Contain(path));
        Assert.That(ex.Message, Does.Contain("'w'").And.Contain("[2, 3]").And.Contain("[3, 2]"), "shape mismatch");
        Assert.That(ex.Message, Does.Contain("'c'").And.Contain("missing"), "missing tensor");
        Assert.That(ex.Message, Does.Contain("model.b").And.Contain("not in the model"), "unexpected tensor");
        Assert.That(ex.Message, Does.Contain("AdamW").And.Contain("Sgd"), "optimizer type");
        Assert.That(ex.Problems.Count, Is.GreaterThanOrEqualTo(5));
        foreach (var (name, t) in other) Assert.That(t.ToArray(), Is.EqualTo(before[name]), $"'{name}' untouched");
        Assert.That(sgd.StepCount, Is.EqualTo(0));

        // Non-strict model loading ignores missing/extra tensors but still checks shapes.
        var partial = Model(("b", [3]), ("c", [3]));
        var info = Checkpoint.Load(path, partial, null, strict: false);
        Assert.That(info.Step, Is.EqualTo(1));
        Assert.That(partial["b"].ToArray(), Is.EqualTo(model["b"].ToArray()));
    }

    [Test]
    public void FailedWriteLeavesTheOldCheckpointIntact()
    {
        var path = Path.Combine(_dir, "keep.safetensors");
        var model = Model(("a", [64, 64]), ("z", [3]));
        Checkpoint.Save(path, model, null, new CheckpointInfo(5, 5));
        var original = File.ReadAllBytes(path);

        var entries = new[]
        {
            SafeTensorsEntry.FromArray("model.a", new float[64 * 64], new Shape(64, 64)),       // written, then...
            new SafeTensorsEntry("model.z", DType.Float32, new Shape(3), _ => throw new IOException("simulated device failure")),
        };
        Assert.That(() => Checkpoint.Save(path, entries, null, new CheckpointInfo(6, 6)),
            Throws.InstanceOf<IOException>().With.Message.Contains("simulated"));
        Assert.That(File.ReadAllBytes(path), Is.EqualTo(original), "old checkpoint untouched");
        Assert.That(Directory.GetFiles(_dir), Is.EqualTo(new[] { path }), "no temporary file left behind");

        var fresh = Model(("a", [64, 64]), ("z", [3]));
        Assert.That(Checkpoint.Load(path, fresh, null).Step, Is.EqualTo(5));
        Assert.That(fresh["a"].ToArray(), Is.EqualTo(model["a"].ToArray()));
    }

    [Test]
    public void CorruptedCheckpointsAreRejected()
    {
        var path = Path.Combine(_dir, "c.safetensors");
        var model = Model(("w", [4, 4]));
        Checkpoint.Save(path, model, null, new CheckpointInfo(2, 2, null));
        var bytes = File.ReadAllBytes(path);

        File.WriteAllBytes(path, bytes[..^3]);
        Assert.That(() => Checkpoint.Load(path, model, null), Throws.InstanceOf<InvalidDataException>().With.Message.Contains("truncated"));
        var flipped = (byte[])bytes.Clone();
        flipped[^7] ^= 4;
        File.WriteAllBytes(path, flipped);
        Assert.That(() => Checkpoint.Load(path, model, null), Throws.InstanceOf<InvalidDataException>().With.Message.Contains("SHA-256"));

        // A plain safetensors file (no checkpoint metadata) is not mistaken for a checkpoint.
        SafeTensors.Save(path, new Dictionary<string, Tensor> { ["model.w"] = model["w"] });
        Assert.That(() => Checkpoint.Load(path, model, null), Throws.InstanceOf<InvalidDataException>().With.Message.Contains("not an engine checkpoint"));
    }

    [Test]
    public void CheckpointIsReadableAsPlainSafetensors()
    {
        var path = Path.Combine(_dir, "plain.safetensors");
        var model = Model(("enc.w", [2, 2]));
        var rng = new RandomSource(123, 456);
        Checkpoint.Save(path, model, null, new CheckpointInfo(9, 8, new Dictionary<string, RandomSource> { ["dropout"] = rng })
            with { Extra = new Dictionary<string, string> { ["epoch"] = "3" } });
        var file = SafeTensors.Load(path);
        Assert.That(file.Tensors.Select(t => t.Name), Is.EqualTo(new[] { "model.enc.w" }));
        Assert.That(file.Metadata["step"], Is.EqualTo("9"));
        Assert.That(file.Metadata["schedule_position"], Is.EqualTo("8"));
        Assert.That(file.Metadata["rng.dropout.seed"], Is.EqualTo("123"));
        Assert.That(file.Metadata["rng.dropout.position"], Is.EqualTo("456"));
        var info = Checkpoint.Load(path, model, null);
        Assert.That(info.RandomSources["dropout"].Seed, Is.EqualTo(123UL));
        Assert.That(info.RandomSources["dropout"].Position, Is.EqualTo(456UL));
        Assert.That(info.Extra["epoch"], Is.EqualTo("3"));
    }
}
