using Sbp.Engine.Tests.Support;

namespace Sbp.Engine.Tests.OpTests;

/// <summary>Finite-difference checks of matmul (torch.matmul rules) and linear.</summary>
public class MatmulGradTests
{
    [TestCaseSource(typeof(MatmulCases), nameof(MatmulCases.ShapeCases))]
    public void MatmulGradient(int[] shapeA, int[] shapeB) =>
        GradCheck.Check($"matmul {Ref.Format(shapeA)} @ {Ref.Format(shapeB)}", x => Sbp.Ops.Matmul(x[0], x[1]),
            GradInput.Uniform(91, shapeA), GradInput.Uniform(92, shapeB));

    [TestCase(true)]
    [TestCase(false)]
    public void MatmulWithOneConstantOperand(bool leftIsConstant)
    {
        var a = GradInput.Uniform(93, 2, 1, 3, 5);
        var b = GradInput.Uniform(94, 3, 5, 4);
        GradCheck.Check("matmul (one constant operand)", x => Sbp.Ops.Matmul(x[0], x[1]),
            leftIsConstant ? a.Constant() : a, leftIsConstant ? b : b.Constant());
    }

    [TestCase(true)]
    [TestCase(false)]
    public void LinearGradient(bool withBias)
    {
        var x = GradInput.Uniform(95, 2, 3, 5);
        var w = GradInput.Uniform(96, 7, 5);
        if (withBias)
            GradCheck.Check("linear with bias", t => Sbp.Ops.Linear(t[0], t[1], t[2]), x, w, GradInput.Uniform(97, 7));
        else
            GradCheck.Check("linear without bias", t => Sbp.Ops.Linear(t[0], t[1]), x, w);
    }

    [Test]
    public void LinearOfAVector() =>
        GradCheck.Check("linear [5]", t => Sbp.Ops.Linear(t[0], t[1], t[2]),
            GradInput.Uniform(98, 5), GradInput.Uniform(99, 3, 5), GradInput.Uniform(100, 3));

    [TestCase(0, 3, true)]
    [TestCase(3, 4, true)]
    [TestCase(2, 5, false)]
    public void LinearRowsGradient(int start, int count, bool withBias)
    {
        // A block of a [7, 5] weight's rows; the gradient of the other rows must be exactly zero.
        var x = GradInput.Uniform(104, 2, 3, 5);
        var w = GradInput.Uniform(105, 7, 5);
        if (withBias)
            GradCheck.Check($"linear_rows [{start}, {start + count}) with bias", t => Sbp.Ops.LinearRows(t[0], t[1], t[2], start, count), x, w, GradInput.Uniform(106, 7));
        else
            GradCheck.Check($"linear_rows [{start}, {start + count})", t => Sbp.Ops.LinearRows(t[0], t[1], null, start, count), x, w);
    }

    [Test]
    public void LinearWithConstantWeight() =>
        GradCheck.Check("linear (constant weight)", t => Sbp.Ops.Linear(t[0], t[1], t[2]),
            GradInput.Uniform(101, 2, 3, 5), GradInput.Uniform(102, 7, 5).Constant(), GradInput.Uniform(103, 7));
}
