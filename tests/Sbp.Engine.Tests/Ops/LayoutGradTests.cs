using Sbp.Engine.Tests.Support;
using Sbp.Tensors;

namespace Sbp.Engine.Tests.OpTests;

/// <summary>Finite-difference checks of reshape, permute, transpose, slice, concat, broadcast_to and sum_to.</summary>
public class LayoutGradTests
{
    // Every layout op is linear; a sum(out * R) loss makes each input element's gradient a distinct
    // combination of R's entries, so a wrong index mapping shows.

    [TestCase(new[] { 5, 21 })]
    [TestCase(new[] { -1, 7 })]
    [TestCase(new[] { 105 })]
    [TestCase(new[] { 7, 1, 15 })]
    public void ReshapeGradient(int[] target) =>
        GradCheck.Check($"reshape to {Ref.Format(target)}", x => Sbp.Ops.Reshape(x[0], target), GradInput.Uniform(121, 3, 5, 7));

    [TestCase(new[] { 2, 0, 1 })]
    [TestCase(new[] { 1, 2, 0 })]
    [TestCase(new[] { 0, 2, 1 })]
    [TestCase(new[] { -1, 0, -2 })]
    public void PermuteGradient(int[] perm) =>
        GradCheck.Check($"permute {Ref.Format(perm)}", x => Sbp.Ops.Permute(x[0], perm), GradInput.Uniform(122, 3, 5, 7));

    [Test]
    public void PermuteOfUnitAxesGradient() =>
        GradCheck.Check("permute moving a unit axis (a view)", x => Sbp.Ops.Permute(x[0], 0, 2, 1, 3), GradInput.Uniform(124, 3, 5, 1, 7));

    [TestCase(0, 2)]
    [TestCase(-1, -2)]
    [TestCase(1, 1)]
    public void TransposeGradient(int dim0, int dim1) =>
        GradCheck.Check($"transpose {dim0} {dim1}", x => Sbp.Ops.Transpose(x[0], dim0, dim1), GradInput.Uniform(123, 3, 5, 7));

    [TestCase(0, 1, 2)]
    [TestCase(1, 2, 3)]
    [TestCase(-1, 0, 7)]   // the whole axis
    [TestCase(2, 6, 1)]    // the last element
    [TestCase(1, 3, 0)]    // empty: the gradient is all zeros
    public void SliceGradient(int dim, int start, int length) =>
        GradCheck.Check($"slice dim {dim} [{start}, {start + length})", x => Sbp.Ops.Slice(x[0], dim, start, length), GradInput.Uniform(124, 3, 5, 7));

    [TestCase(0)]
    [TestCase(1)]
    [TestCase(-1)]
    public void ConcatOfThreeGradient(int dim)
    {
        // Three parts of sizes 1, 2 and 4 along dim; the other axes are 3 and 5.
        int[] Shape(int size) => dim switch { 0 => [size, 3, 5], 1 => [3, size, 5], _ => [3, 5, size] };
        GradCheck.Check($"concat dim {dim}", x => Sbp.Ops.Concat(x, dim),
            GradInput.Uniform(125, Shape(1)), GradInput.Uniform(126, Shape(2)), GradInput.Uniform(127, Shape(4)));
    }

    [Test]
    public void ConcatWithAConstantPart() =>
        GradCheck.Check("concat (constant middle part)", x => Sbp.Ops.Concat(x, 1),
            GradInput.Uniform(128, 3, 2), GradInput.Uniform(129, 3, 3).Constant(), GradInput.Uniform(130, 3, 1));

    [TestCase(new[] { 3, 1 }, new[] { 2, 3, 5 })]
    [TestCase(new[] { 5 }, new[] { 3, 5 })]
    [TestCase(new int[0], new[] { 3, 5 })]
    [TestCase(new[] { 1, 5, 1 }, new[] { 3, 5, 7 })]
    [TestCase(new[] { 3, 5 }, new[] { 3, 5 })]
    public void BroadcastToGradient(int[] from, int[] to) =>
        GradCheck.Check($"broadcast_to {Ref.Format(from)} -> {Ref.Format(to)}", x => Sbp.Ops.BroadcastTo(x[0], new Shape(to)), GradInput.Uniform(131, from));

    [TestCase(new[] { 2, 3, 5 }, new[] { 3, 1 })]
    [TestCase(new[] { 2, 3, 5 }, new[] { 5 })]
    [TestCase(new[] { 2, 3, 5 }, new int[0])]
    [TestCase(new[] { 2, 3, 5 }, new[] { 2, 1, 5 })]
    [TestCase(new[] { 2, 3, 5 }, new[] { 1, 3, 1 })]
    [TestCase(new[] { 3, 5 }, new[] { 3, 5 })]
    public void SumToGradient(int[] from, int[] to) =>
        GradCheck.Check($"sum_to {Ref.Format(from)} -> {Ref.Format(to)}", x => Sbp.Ops.SumTo(x[0], new Shape(to)), GradInput.Uniform(132, from));
}
