using Sbp.Engine.Tests.Support;
using Sbp.OpCases;
using Sbp.Tensors;

namespace Sbp.Engine.Tests.OpTests;

/// <summary>
/// The shared op table (<see cref="OpTable"/>) on the CPU, the reference device: every gradient case's
/// backward against central finite differences of its forward. The simulated CUDA device and the GPU kit
/// run the same table against the CPU (tests/Sbp.Kernels.Tests/Cuda/OpTableDeviceTests.cs).
/// </summary>
public class OpTableGradTests
{
    public static IEnumerable<OpCase> Cases => OpTable.WithFiniteDifferences;

    [TestCaseSource(nameof(Cases))]
    public void Backward_matches_finite_differences_on_the_cpu(OpCase c)
    {
        var leaves = c.Leaves(Device.CreateCpu($"leaves {c.Name}"));
        Assert.That(leaves, Is.Not.Empty, $"{c.Name}: a gradient case without leaves");
        GradCheck.Check(c.Name, xs => c.Forward!(CaseInputs.Replaying(xs)), [.. leaves.Select(l => new GradInput(l.Values, l.Shape))]);
    }

    [Test]
    public void The_check_catches_a_backward_that_is_not_the_forwards_derivative()
    {
        // SBP's gradient mask: the forward is the identity, the backward keeps every other frame.
        var c = OpTable.All.Single(k => k.Name == "grad_mask (SBP)");
        var leaves = c.Leaves(Device.CreateCpu("leaves grad_mask"));
        Assert.That(() => GradCheck.Check(c.Name, xs => c.Forward!(CaseInputs.Replaying(xs)), [.. leaves.Select(l => new GradInput(l.Values, l.Shape))]),
            Throws.InstanceOf<AssertionException>().With.Message.Contains("differ from central differences"));
    }

    [Test]
    public void The_table_covers_every_case_kind()
    {
        Assert.That(OpTable.All.Select(c => c.Name), Is.Unique, "case names are test names");
        Assert.That(OpTable.All.Count(c => c.HasFiniteDifferenceCheck), Is.GreaterThan(40));
        Assert.That(OpTable.All.Where(c => !c.HasFiniteDifferenceCheck).Select(c => c.Name),
            Is.EquivalentTo(new[] { "grad_mask (SBP)", "fill + copies", "sgd (momentum, nesterov)", "adamw", "grad norm (sum of squares)", "grad clip (global norm)",
                "value checks (indices, floor)", "casts (bfloat16, float16 bits)", "to (bfloat16 and back)", "grad scaler (skip, back-off, growth)", "saved as bfloat16 (layer_norm, gelu, linear)", "autocast bfloat16 (linear, gelu, attention)", "autocast float16 attention (bias, window mask)", "saved as bfloat16 (attention)", "autocast bfloat16 (bias_gelu)", "autocast float16 (relu)", "autocast bfloat16 (Swin's pad, roll, window partition and reverse)", "autocast float16 (conv3d without bias)", "autocast float16 (cross_entropy of 16-bit logits)", "autocast bfloat16 (layer_norm of a 16-bit input, to a 16-bit output)", "SBP sparse cache under autocast (attention over 9 keys)", "autocast bfloat16 (residual add, drop_path, dropout, promoted)", "autocast float16 (bias_gelu tanh, gelu)", "autocast bfloat16 (conv3d, relu)", "gemm on 16-bit operands (bfloat16, float16)" }));
    }
}
