using Sbp.OpCases;

namespace Sbp.Kernels.Tests.Cuda;

/// <summary>
/// The shared op table (<see cref="OpTable"/>) on the simulated CUDA device (or the real GPU with
/// SBP_CUDA_TEST_DEVICE=cuda) against the CPU: every output and gradient within the case's tolerance.
/// The CPU's own check of the same table is tests/Sbp.Engine.Tests/Ops/OpTableGradTests.cs; the GPU kit
/// runs it too.
/// </summary>
public sealed class OpTableDeviceTests : CudaTest
{
    public static IEnumerable<OpCase> Cases => OpTable.All;

    [TestCaseSource(nameof(Cases))]
    public void Matches_the_cpu(OpCase c)
    {
        var result = OpComparison.Compare(c, Gpu, Cpu);
        Assert.That(result.Passed, Is.True, $"{c.Name} on {Gpu}: {result.Error ?? result.Worst}");
    }

    [Test]
    public void The_comparison_names_the_worst_element_outside_the_tolerance()
    {
        var c = OpTable.All.Single(k => k.Name == "matmul");
        var expected = c.Run(Cpu);
        var actual = expected.Select(r => (r.What, (float[])r.Values.Clone())).ToList();
        actual[1].Item2[3] += 1e-3f;   // one element of d0's gradient, far outside rtol 1e-4 + atol 1e-4
        var result = OpComparison.Compare(c, expected, actual, 0);
        Assert.That(result.Passed, Is.False);
        Assert.That(result.Worst, Does.StartWith("d0[3] = "));
        Assert.That(OpComparison.Compare(c, expected, expected, 0).Passed, Is.True);
    }
}
