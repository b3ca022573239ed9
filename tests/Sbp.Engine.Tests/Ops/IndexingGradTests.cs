using Sbp.Engine.Tests.Support;
using Sbp.Tensors;

namespace Sbp.Engine.Tests.OpTests;

/// <summary>Finite-difference checks of index_select (gather) and index_add (scatter-add).</summary>
public class IndexingGradTests
{
    static Tensor Indices(Tensor like, int[] indices) => Tensor.FromArray(indices, new Shape(indices.Length), like.Device);

    // Repeated, unordered, and leaving some positions out (so their gradient must be exactly 0).
    [TestCase(0, new[] { 2, 0, 2 })]
    [TestCase(1, new[] { 4, 0, 4, 2, 1, 4 })]
    [TestCase(-1, new[] { 6, 6, 3, 0, 5, 6, 1 })]
    [TestCase(1, new int[0])]
    public void IndexSelectGradient(int dim, int[] indices) =>
        GradCheck.Check($"index_select dim {dim} {Ref.Format(indices)}",
            x => Sbp.Ops.IndexSelect(x[0], dim, Indices(x[0], indices)), GradInput.Uniform(151, 3, 5, 7));

    [TestCase(0, new[] { 2, 0, 2, 2 })]
    [TestCase(1, new[] { 4, 0, 4, 2, 1, 4 })]
    [TestCase(-1, new[] { 6, 6, 3 })]
    public void IndexAddGradient(int dim, int[] indices)
    {
        int[] xShape = [3, 5, 7];
        var sourceShape = (int[])xShape.Clone();
        sourceShape[(dim + 3) % 3] = indices.Length;
        GradCheck.Check($"index_add dim {dim} {Ref.Format(indices)}",
            x => Sbp.Ops.IndexAdd(x[0], dim, Indices(x[0], indices), x[1]),
            GradInput.Uniform(152, xShape), GradInput.Uniform(153, sourceShape));
    }

    [TestCase(true)]
    [TestCase(false)]
    public void IndexAddWithOneConstantInput(bool xIsConstant)
    {
        var x = GradInput.Uniform(154, 5, 3);
        var source = GradInput.Uniform(155, 4, 3);
        GradCheck.Check("index_add (one constant input)",
            t => Sbp.Ops.IndexAdd(t[0], 0, Indices(t[0], [3, 1, 3, 3]), t[1]),
            xIsConstant ? x.Constant() : x, xIsConstant ? source : source.Constant());
    }

    [Test]
    public void GatherThenScatterRoundTrip() =>
        // index_add(zeros-like, idx, index_select(x, idx)) multiplies each row by its count in idx.
        GradCheck.Check("index_add(0 * x, index_select(x))",
            x => Sbp.Ops.IndexAdd(Sbp.Ops.Mul(x[0], 0f), 1, Indices(x[0], [3, 0, 3]), Sbp.Ops.IndexSelect(x[0], 1, Indices(x[0], [3, 0, 3]))),
            GradInput.Uniform(156, 3, 5));
}
