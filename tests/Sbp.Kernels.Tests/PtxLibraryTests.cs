using System.Text.RegularExpressions;
using Sbp.Backends.Cuda;
using Sbp.CudaSim;
using Sbp.Kernels.Tests.Support;
using Sbp.OpCases;
using Sbp.PtxSim;
using Sbp.Tensors;

namespace Sbp.Kernels.Tests;

/// <summary>The embedded kernel modules: lookup by entry name, headers, and the simulator's view of them.</summary>
public sealed class PtxLibraryTests
{
    [Test]
    public void ListsEveryModuleOfTheKernelsFolder()
    {
        Assert.That(PtxLibrary.Modules, Is.EquivalentTo(new[] { "attention", "bce", "cast", "dropout", "elementwise", "half", "layernorm", "loss", "optim", "pool", "reduce", "sbp", "softmax", "tensor", "transpose" }));
    }

    /// <summary>
    /// Entries no engine op launches (the backend uses bernoulli_mask_f32 + a multiply for dropout and
    /// scatter_add_atomic_f32 for IndexAdd): their only checks are the direct kernel tests
    /// (DropoutKernelTests, SbpKernelTests). Checked both ways below, so the list cannot go stale.
    /// </summary>
    static readonly string[] NotLaunchedByTheEngine = ["dropout_f32", "scatter_add_f32", "scatter_add_f32x4"];

    /// <summary>
    /// Every entry in kernels/*.ptx is launched by the op table (the one table every device runs) on a
    /// simulated device, in a case whose results match the CPU; the simulator's per-entry launch counts
    /// say which ran. The test runs the table itself: a process-wide count checked after the other tests
    /// would depend on NUnit's fixture order and on filters, and a failing OneTimeTearDown does not fail
    /// `dotnet test`.
    /// </summary>
    [Test]
    public void EveryKernelIsLaunchedByACaseOfTheOpTable()
    {
        var gpu = SimulatedCuda.CreateDevice("cuda-sim kernel coverage");
        var cpu = Device.CreateCpu("cpu kernel coverage");
        var firstLaunchedBy = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var c in OpTable.All)
        {
            var before = SimulatedCuda.Launches(gpu).Keys.ToHashSet(StringComparer.Ordinal);
            var result = OpComparison.Compare(c, gpu, cpu);
            Assert.That(result.Passed, Is.True, $"{c.Name}: {result.Error ?? result.Worst}");
            foreach (var entry in SimulatedCuda.Launches(gpu).Keys.Where(e => !before.Contains(e)))
                firstLaunchedBy[entry] = c.Name;
        }
        TestContext.Out.WriteLine(string.Join("\n", firstLaunchedBy.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => $"{kv.Key,-28} {kv.Value}")));
        Assert.That(PtxLibrary.Entries.Except(NotLaunchedByTheEngine).Except(firstLaunchedBy.Keys), Is.Empty,
            "entries no op-table case launches on the simulated device: add a case to kernels/Sbp.OpCases/OpTable.cs");
        Assert.That(NotLaunchedByTheEngine, Is.SubsetOf(PtxLibrary.Entries), "an exempt entry no longer exists");
        Assert.That(NotLaunchedByTheEngine.Intersect(firstLaunchedBy.Keys), Is.Empty, "the engine launches an exempt entry now: remove it from NotLaunchedByTheEngine");
        Assert.That(gpu.Pool.InUseBytes + cpu.Pool.InUseBytes, Is.Zero, "the op table leaked tensors");
    }

    [Test]
    public void FindsTheModuleOfAnEntry()
    {
        Assert.That(PtxLibrary.ModuleOf("gather_f32x4"), Is.EqualTo("sbp"));
        Assert.That(PtxLibrary.ModuleOf("adamw_f32"), Is.EqualTo("optim"));
        Assert.That(PtxLibrary.TextOf("softmax_bwd_f32"), Does.Contain(".visible .entry softmax_bwd_f32("));
        Assert.That(PtxLibrary.Contains("relu_f32"), Is.True);
        Assert.That(PtxLibrary.Contains("relu_f64"), Is.False);
        Assert.That(PtxLibrary.EntriesOf("sbp"), Does.Contain("scatter_add_f32x4"));
    }

    [Test]
    public void AnUnknownEntryIsAClearError()
    {
        var e = Assert.Throws<KeyNotFoundException>(() => PtxLibrary.ModuleOf("gathr_f32"))!;
        Assert.That(e.Message, Does.Contain("'gathr_f32'").And.Contain("Did you mean 'gather_f32'"));
        var m = Assert.Throws<KeyNotFoundException>(() => PtxLibrary.ModuleText("nope"))!;
        Assert.That(m.Message, Does.Contain("'nope'").And.Contain("sbp"));
    }

    [Test]
    public void EveryModuleHasTheRequiredHeaderAndNamingConvention()
    {
        foreach (var module in PtxLibrary.Modules)
        {
            var lines = PtxLibrary.ModuleText(module).Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith("//", StringComparison.Ordinal)).Take(3).ToArray();
            Assert.That(lines, Is.EqualTo(new[] { ".version 7.8", ".target sm_80", ".address_size 64" }), module);
            foreach (var entry in PtxLibrary.EntriesOf(module))
                Assert.That(Regex.IsMatch(entry, "^[a-z][a-z0-9_]*_(f32|f32x4|i32|u32|bf16|f16|b16)$"), Is.True, $"{module}: {entry} is not <op>_<dtype>");
        }
    }

    [Test]
    public void TheSimulatorParsesEveryModuleAndSeesTheSameEntries()
    {
        foreach (var module in PtxLibrary.Modules)
        {
            PtxModule parsed = SimGpu.Module(module);
            Assert.That(parsed.EntryNames, Is.EquivalentTo(PtxLibrary.EntriesOf(module)), module);
        }
    }
}
