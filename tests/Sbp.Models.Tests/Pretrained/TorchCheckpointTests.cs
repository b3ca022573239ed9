using System.Text.Json;
using Sbp.Models.Pretrained;
using Sbp.Models.Tests.Reference;
using Sbp.Tensors;

namespace Sbp.Models.Tests.Pretrained;

/// <summary>
/// The PyTorch checkpoint reader on files written by an independent writer (tools/PthFixtures: Python's own pickle
/// and zipfile after torch/serialization.py, checked there against real torch 1.13): state dicts in the mmaction,
/// DataParallel and torchvision layouts, every storage dtype, views, shared storages, the legacy format; and hostile
/// files (code execution through GLOBAL/REDUCE, INST, OBJ, STACK_GLOBAL; oversized lengths, bad memo, storages
/// overrun, compressed and truncated zips, TorchScript, SETITEMS on a list, deep nesting), each refused with a
/// message naming what was refused, and nothing executed.
/// </summary>
public sealed class TorchCheckpointTests
{
    static string Folder => Path.Combine(AppContext.BaseDirectory, "Fixtures", "Pth");
    static string PathOf(string name) => Path.Combine(Folder, name);

    static IReadOnlyDictionary<string, HostArray> Expected(string file) => PretrainedInit.Read(file, "safetensors");

    static void AssertSame(IReadOnlyDictionary<string, HostArray> actual, IReadOnlyDictionary<string, HostArray> expected, IEnumerable<string>? only = null)
    {
        foreach (var name in only ?? expected.Keys)
        {
            Assert.That(actual.ContainsKey(name), name);
            Assert.That(actual[name].Shape, Is.EqualTo(expected[name].Shape), name);
            // bit patterns: the dtype fixture holds NaNs
            Assert.That(actual[name].Values.Select(BitConverter.SingleToInt32Bits), Is.EqualTo(expected[name].Values.Select(BitConverter.SingleToInt32Bits)), name);
        }
    }

    [Test]
    public void An_mmaction_video_swin_checkpoint_reads_as_its_reference_weights()
    {
        var ckpt = TorchCheckpoint.Load(PathOf("swin-small-map.pth"));
        var reference = ReferenceFixture.Load("swin-small-map").Weights;
        Assert.That((ckpt.Format, ckpt.Location), Is.EqualTo(("zip", "state_dict")));
        Assert.That(ckpt.Tensors.Keys, Is.EquivalentTo(reference.Keys));
        AssertSame(ckpt.Tensors, reference);
        Assert.That(ckpt.DTypes["backbone.layers.0.blocks.0.attn.relative_position_index"], Is.EqualTo("int64"));
        Assert.That(ckpt.DTypes["backbone.norm.weight"], Is.EqualTo("float32"));
    }

    [Test]
    public void Loaded_from_pth_a_model_computes_what_the_same_weights_set_by_hand_compute()
    {
        var fixture = ReferenceFixture.Load("swin-small-map");
        var cpu = Device.CreateCpu("pth forward");
        var byHand = ReferenceRun.Of(fixture, cpu);
        var fromPth = ReferenceRun.Of(fixture.WithWeights(TorchCheckpoint.Load(PathOf("swin-small-map.pth")).Tensors), cpu);
        Assert.That(fromPth.Logits, Is.EqualTo(byHand.Logits));
        Assert.That(ReferenceFixtureTests.RelativeError(fromPth.Logits, fixture.Logits.Values), Is.LessThan(1e-4));
    }

    [Test]
    public void A_dataparallel_checkpoint_with_views_and_shared_storages_reads_whole()
    {
        var ckpt = TorchCheckpoint.Load(PathOf("videomae-tiny.pth"));
        var reference = ReferenceFixture.Load("videomae-tiny").Weights;
        Assert.That(ckpt.Location, Is.EqualTo(""));
        Assert.That(ckpt.Tensors.Keys, Is.EquivalentTo(reference.Keys), "the module. prefix is removed");
        AssertSame(ckpt.Tensors, reference);
    }

    [TestCase("dtypes.pth", "zip")]
    [TestCase("dtypes-legacy.pth", "legacy")]
    public void Every_storage_dtype_and_view_converts_as_torch_float_does(string file, string format)
    {
        var ckpt = TorchCheckpoint.Load(PathOf(file));
        var expected = Expected(PathOf("dtypes.expected.safetensors"));
        Assert.That(ckpt.Format, Is.EqualTo(format));
        Assert.That(ckpt.Tensors.Keys, Is.EquivalentTo(expected.Keys));
        AssertSame(ckpt.Tensors, expected);
        Assert.That(ckpt.DTypes.Values, Is.SupersetOf(new[] { "float32", "float16", "bfloat16", "float64", "int64", "int32", "uint8", "bool" }));
    }

    [Test]
    public void A_torchvision_state_dict_keeps_its_step_counters_and_loads_without_them()
    {
        var ckpt = TorchCheckpoint.Load(PathOf("r2plus1d-tiny-eval.pth"));
        Assert.That(ckpt.Tensors["stem.1.num_batches_tracked"].Shape, Is.Empty);
        var cpu = Device.CreateCpu("r2plus1d pth");
        using var model = Sbp.Models.Architectures.ModelFactory.Create("r2plus1d-nano", new Sbp.Rng.RandomSource(3), cpu);
        string said = PretrainedInit.Load(model, ckpt.Tensors, resetHead: false);
        Assert.That(said, Does.Contain("TorchvisionVideoResNet"));
        var reference = ReferenceFixture.Load("r2plus1d-tiny-eval").Weights;
        foreach (var (name, t) in model.StateDict()) Assert.That(t.ToArray(), Is.EqualTo(reference[name].Values), name);
    }

    [TestCase("r2plus1d-nano")]   // the official (torchvision) layout
    [TestCase("r21d-nano")]       // our names: no official layout
    public void A_refused_init_loads_nothing_and_leaves_the_pool_as_it_was(string name)
    {
        var cpu = Device.CreateCpu("refused init");
        using var model = Sbp.Models.Architectures.ModelFactory.Create(name, new Sbp.Rng.RandomSource(3), cpu, numClasses: 3);
        var before = model.StateDict().ToDictionary(kv => kv.Key, kv => kv.Value.ToArray());
        long pool = cpu.Pool.InUseBytes;
        if (name == "r2plus1d-nano")
            Assert.That(() => PretrainedInit.Load(model, TorchCheckpoint.Load(PathOf("r2plus1d-tiny-eval.pth")).Tensors, resetHead: false),
                Throws.ArgumentException.With.Message.Contains("--reset-head"));
        // Every weight shifted, one missing, one more missing under another name, one unexpected: all reported, nothing loaded.
        var shapes = model.StateDict().ToDictionary(kv => kv.Key, kv => kv.Value.Shape.ToArray());
        var weights = before.ToDictionary(kv => kv.Key, kv => new HostArray(shapes[kv.Key], [.. kv.Value.Select(v => v + 1)]));
        string first = before.Keys.First(), last = before.Keys.Last(k => k.EndsWith("weight", StringComparison.Ordinal));
        weights.Remove(first);
        weights.Remove(last);
        weights["extra.weight"] = new HostArray([2], [1, 2]);
        var e = Assert.Throws<Sbp.Nn.StateDictMismatchException>(() => PretrainedInit.Load(model, weights, resetHead: false))!;
        Assert.That(e.Missing, Has.Count.EqualTo(2).And.Some.StartsWith(first).And.Some.StartsWith(last));
        Assert.That(e.Unexpected, Has.One.StartsWith("extra.weight"));
        Assert.That(cpu.Pool.InUseBytes, Is.EqualTo(pool), "the tensors made for the load are freed");
        foreach (var (key, t) in model.StateDict()) Assert.That(t.ToArray(), Is.EqualTo(before[key]), key);
    }

    public static IEnumerable<TestCaseData> Hostile()
    {
        using var manifest = JsonDocument.Parse(File.ReadAllText(PathOf("MANIFEST.json")));
        foreach (var f in manifest.RootElement.GetProperty("files").EnumerateArray().Where(f => f.GetProperty("kind").GetString() == "hostile"))
            yield return new TestCaseData(f.GetProperty("name").GetString(), f.GetProperty("names").EnumerateArray().Select(n => n.GetString()!).ToArray())
                .SetName($"Hostile file {f.GetProperty("name").GetString()} is refused");
    }

    [TestCaseSource(nameof(Hostile))]
    public void Hostile_files_are_refused_naming_what_was_refused(string file, string[] names)
    {
        const string Witness = "/tmp/sbp-pwned";
        File.Delete(Witness);
        var e = Assert.Throws<PthFormatException>(() => TorchCheckpoint.Load(PathOf(file)))!;
        Assert.That(names.Any(n => e.Message.Contains(n, StringComparison.OrdinalIgnoreCase)), $"the message names one of {string.Join(", ", names)}: {e.Message}");
        Assert.That(e.Message, Does.StartWith(file + ":"));
        Assert.That(File.Exists(Witness), Is.False, "nothing was executed");
    }

    [Test]
    public void The_fixtures_are_the_ones_the_manifest_lists()
    {
        using var manifest = JsonDocument.Parse(File.ReadAllText(PathOf("MANIFEST.json")));
        var listed = manifest.RootElement.GetProperty("files").EnumerateArray().Select(f => f.GetProperty("name").GetString()).ToList();
        var present = Directory.GetFiles(Folder).Select(Path.GetFileName).Where(n => n != "MANIFEST.json");
        Assert.That(present, Is.EquivalentTo(listed));
        Assert.That(listed, Has.Some.StartsWith("evil-").And.Some.EqualTo("dtypes-legacy.pth"));
    }
}
