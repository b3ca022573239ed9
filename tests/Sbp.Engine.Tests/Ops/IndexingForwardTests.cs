using Sbp.Engine.Tests.Support;

namespace Sbp.Engine.Tests.OpTests;

/// <summary>Forward values of index_select and index_add against float64 index arithmetic.</summary>
public class IndexingForwardTests : DeviceTest
{
    static readonly float[] X = Rand.Uniform(161, 3 * 5 * 7);

    [TestCase(0, new[] { 2, 0, 2 })]
    [TestCase(1, new[] { 4, 0, 4, 2, 1, 4 })]
    [TestCase(-1, new[] { 6, 6, 3, 0, 5, 6, 1 })]
    [TestCase(1, new int[0])]
    public void IndexSelectMatchesReference(int dim, int[] indices) =>
        Ref.AssertClose("index_select", Sbp.Ops.IndexSelect(T(X, 3, 5, 7), dim, Idx(indices)),
            Ref.IndexSelect(RefTensor.Of(X, 3, 5, 7), dim, indices), 0, 0);

    [TestCase(0, new[] { 2, 0, 2, 2 })]
    [TestCase(1, new[] { 4, 0, 4, 2, 1, 4 })]
    [TestCase(-1, new[] { 6, 6, 3 })]
    public void IndexAddAddsUpRepeatedIndices(int dim, int[] indices)
    {
        int[] sourceShape = [3, 5, 7];
        sourceShape[(dim + 3) % 3] = indices.Length;
        var source = Rand.Uniform(162, Ref.Numel(sourceShape));
        var y = Sbp.Ops.IndexAdd(T(X, 3, 5, 7), dim, Idx(indices), T(source, sourceShape));
        Ref.AssertClose("index_add", y, Ref.IndexAdd(RefTensor.Of(X, 3, 5, 7), dim, indices, RefTensor.Of(source, sourceShape)), 1e-6, 1e-6);
    }

    [Test]
    public void IndexAddLeavesItsInputUnchanged()
    {
        var x = T(X, 3, 5, 7);
        Sbp.Ops.IndexAdd(x, 0, Idx(1), T(Rand.Uniform(163, 35), 1, 5, 7));
        Assert.That(x.ToArray(), Is.EqualTo(X));
    }

    [Test]
    public void LargeOddGatherAndScatterMatchReference()
    {
        // 67 rows of 129 gathered 131 times: parallel paths; indices random with repeats.
        var x = Rand.Uniform(164, 67 * 129);
        var indices = Rand.Ints(165, 131, 0, 67);
        var gathered = Sbp.Ops.IndexSelect(T(x, 67, 129), 0, Idx(indices));
        Ref.AssertClose("index_select", gathered, Ref.IndexSelect(RefTensor.Of(x, 67, 129), 0, indices), 0, 0);
        var source = Rand.Uniform(166, 131 * 129);
        var scattered = Sbp.Ops.IndexAdd(T(x, 67, 129), 0, Idx(indices), T(source, 131, 129));
        Ref.AssertClose("index_add", scattered, Ref.IndexAdd(RefTensor.Of(x, 67, 129), 0, indices, RefTensor.Of(source, 131, 129)), 1e-5, 1e-5);
    }
}
