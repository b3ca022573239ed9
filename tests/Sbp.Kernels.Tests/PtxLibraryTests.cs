using System.Text.RegularExpressions;
using Sbp.Backends.Cuda;
using Sbp.Kernels.Tests.Support;
using Sbp.PtxSim;

namespace Sbp.Kernels.Tests;

/// <summary>The embedded kernel modules: lookup by entry name, headers, and the simulator's view of them.</summary>
public sealed class PtxLibraryTests
{
    /// <summary>Every entry point some test in this project runs on the simulator. Add new kernels here with their test.</summary>
    static readonly string[] Tested =
    [
        "gather_f32", "gather_f32x4", "scatter_add_f32", "scatter_add_f32x4", "scatter_add_atomic_f32",
        "add_f32", "mul_f32", "scale_f32", "relu_f32", "relu_bwd_f32",
        "gelu_tanh_f32", "gelu_tanh_bwd_f32", "gelu_erf_f32", "gelu_erf_bwd_f32",
        "bernoulli_mask_f32", "dropout_f32",
        "softmax_f32", "softmax_bwd_f32", "log_softmax_f32", "log_softmax_bwd_f32",
        "layer_norm_f32", "layer_norm_bwd_f32", "layer_norm_bwd_params_f32",
        "sum_f32", "sum_rows_f32", "sum_cols_f32",
        "cross_entropy_f32", "cross_entropy_bwd_f32",
        "sgd_f32", "adamw_f32",
        // Run through CudaBackend on the simulated device (tests/Sbp.Kernels.Tests/Cuda).
        "strided_copy_f32", "binary_f32", "unary_f32", "reduce_f32", "bce_f32", "bce_bwd_f32",
        "max_pool3d_f32", "max_pool3d_bwd_f32",
    ];

    [Test]
    public void ListsEveryModuleOfTheKernelsFolder()
    {
        Assert.That(PtxLibrary.Modules, Is.EquivalentTo(new[] { "bce", "dropout", "elementwise", "layernorm", "loss", "optim", "pool", "reduce", "sbp", "softmax", "tensor" }));
    }

    [Test]
    public void EveryKernelHasATest()
    {
        Assert.That(PtxLibrary.Entries, Is.EquivalentTo(Tested),
            "each entry in kernels/*.ptx needs a simulator test against the CPU backend (and a line in PtxLibraryTests.Tested)");
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
                Assert.That(Regex.IsMatch(entry, "^[a-z][a-z0-9_]*_(f32|f32x4|i32|u32)$"), Is.True, $"{module}: {entry} is not <op>_<dtype>");
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
