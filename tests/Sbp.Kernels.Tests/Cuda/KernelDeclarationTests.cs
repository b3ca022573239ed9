using System.Reflection;
using System.Runtime.InteropServices;
using Sbp.Backends.Cuda;
using Sbp.Backends.Cuda.Interop;

namespace Sbp.Kernels.Tests.Cuda;

/// <summary>
/// Every kernel is launched through its declaration (<see cref="PtxKernels"/>), checked against the PTX's
/// .param list when its module loads and against the arguments at each launch; checked library calls
/// name their export from the call expression.
/// </summary>
public class KernelDeclarationTests
{
    [Test]
    public void Every_module_matches_its_declarations()
    {
        foreach (var module in PtxLibrary.Modules)
            Assert.DoesNotThrow(() => Kernel.CheckModule(module, PtxLibrary.ModuleText(module)), module);
        var declared = PtxKernels.All.Select(k => k.Entry).Order().ToList();
        Assert.That(declared, Is.EqualTo(PtxLibrary.Modules.SelectMany(PtxLibrary.EntriesOf).Order().ToList()), "one declaration per entry");
    }

    [Test]
    public void A_changed_parameter_list_is_refused_when_the_module_loads()
    {
        var text = PtxLibrary.ModuleText("elementwise");
        var wider = text.Replace(".visible .entry add_f32(\n    .param .u64 p_a,", ".visible .entry add_f32(\n    .param .u64 p_a,\n    .param .f32 p_extra,", StringComparison.Ordinal);
        Assume.That(wider, Is.Not.EqualTo(text), "the PTX text changed");
        var e = Assert.Throws<InvalidOperationException>(() => Kernel.CheckModule("elementwise", wider))!;
        Assert.That(e.Message, Does.Contain("add_f32").And.Contain(".f32 extra").And.Contain("PtxKernels declares"));
        var missing = text.Replace(".visible .entry relu_f32(", ".visible .entry relu2_f32(", StringComparison.Ordinal);
        Assert.That(() => Kernel.CheckModule("elementwise", missing), Throws.InvalidOperationException.With.Message.Contains("no entry relu_f32"));
    }

    [Test]
    public void Arguments_of_the_wrong_number_or_kind_are_refused_at_launch()
    {
        Assert.DoesNotThrow(() => PtxKernels.AddF32.CheckArgs([CudaArg.Ptr(1), CudaArg.Ptr(2), CudaArg.Ptr(3), CudaArg.U32(4)]));
        Assert.That(() => PtxKernels.AddF32.CheckArgs([CudaArg.Ptr(1), CudaArg.Ptr(2), CudaArg.U32(4)]), Throws.InvalidOperationException.With.Message.Contains("add_f32"));
        Assert.That(() => PtxKernels.ScaleF32.CheckArgs([CudaArg.Ptr(1), CudaArg.Ptr(2), CudaArg.U32(4), CudaArg.U32(5)]),
            Throws.InvalidOperationException.With.Message.Contains(".f32 alpha"));
    }

    [Test]
    public void A_checked_call_is_named_by_its_export()
    {
        foreach (var type in new[] { typeof(CuDriver), typeof(CuBlas), typeof(CuDnn) })
            foreach (var m in type.GetMethods(BindingFlags.Static | BindingFlags.NonPublic | BindingFlags.Public))
                if (m.GetCustomAttribute<LibraryImportAttribute>() is { EntryPoint: { } export })
                    Assert.That(CudaErrors.FunctionOf($"{type.Name}.{m.Name}(a, out b)"), Is.EqualTo(export), $"{type.Name}.{m.Name}");
        Assert.That(CudaErrors.FunctionOf("cuMemAlloc_v2"), Is.EqualTo("cuMemAlloc_v2"), "a name given as it is");
        var e = Assert.Throws<CudaException>(() => CudaErrors.Check(CublasStatus.NotInitialized, "cublasCreate_v2"))!;
        Assert.That(e.Message, Does.Contain("cublasCreate_v2"));
    }
}
