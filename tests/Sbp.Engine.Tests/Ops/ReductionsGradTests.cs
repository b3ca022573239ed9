using Sbp.Autograd;
using Sbp.Engine.Tests.Support;
using Sbp.Tensors;

namespace Sbp.Engine.Tests.OpTests;

/// <summary>Finite-difference checks of sum, mean and max over dimensions.</summary>
public class ReductionsGradTests
{
    static Tensor Reduce(string op, Tensor x, int[] dims, bool keepDim) => op switch
    {
        "sum" => Sbp.Ops.Sum(x, dims, keepDim),
        "mean" => Sbp.Ops.Mean(x, dims, keepDim),
        "max" => Sbp.Ops.Max(x, dims, keepDim),
        _ => throw new ArgumentOutOfRangeException(nameof(op), op, null),
    };

    [TestCaseSource(typeof(ReductionCases), nameof(ReductionCases.DimsAndKeepDim))]
    public void ReductionGradient(string op, int[] dims, bool keepDim)
    {
        // Max: distinct values at least 0.06 apart, so no tie appears within the step of 0.01.
        var x = op == "max" ? GradInput.Distinct(171, 3, 5, 7) : GradInput.Uniform(171, 3, 5, 7);
        GradCheck.Check($"{op} {Ref.Format(dims)} keepDim={keepDim}", t => Reduce(op, t[0], dims, keepDim), x);
    }

    [Test]
    public void AllElementForms()
    {
        GradCheck.Check("sum(x)", t => Sbp.Ops.Sum(t[0]), GradInput.Uniform(172, 3, 5));
        GradCheck.Check("mean(x)", t => Sbp.Ops.Mean(t[0]), GradInput.Uniform(173, 3, 5));
        GradCheck.Check("max(x)", t => Sbp.Ops.Max(t[0]), GradInput.Distinct(174, 3, 5));
    }

    [Test]
    public void ReductionOverAnAxisOfSizeOne() =>
        GradCheck.Check("sum/max over a size-1 axis", t => Sbp.Ops.Add(Sbp.Ops.Sum(t[0], [1]), Sbp.Ops.Max(t[0], [1])),
            GradInput.Distinct(175, 3, 1, 5));

    [Test]
    public void MaxSplitsTheGradientEvenlyAmongTies()
    {
        // Not differentiable at ties; the rule (as torch.amax) shares the gradient equally.
        var device = Device.CreateCpu("max ties");
        using (TensorScope.Begin())
        {
            var x = Tensor.FromArray([1f, 3f, 3f, 2f, 5f, 5f, 5f, 0f, -1f, -2f, -3f, -4f], new Shape(3, 4), device);
            x.RequiresGrad = true;
            using var tape = Tape.Begin();
            var y = Sbp.Ops.Max(x, [1]);
            tape.Backward(Sbp.Ops.Sum(Sbp.Ops.Mul(y, Tensor.FromArray([1f, 3f, 2f], new Shape(3), device))));
            Assert.That(x.Grad!.ToArray(), Is.EqualTo(new[] { 0f, 0.5f, 0.5f, 0f, 1f, 1f, 1f, 0f, 2f, 0f, 0f, 0f }).Within(1e-6));
        }
        Assert.That(device.Pool.InUseBytes, Is.EqualTo(0));
    }
}
