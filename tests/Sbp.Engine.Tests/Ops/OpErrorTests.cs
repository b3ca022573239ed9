using Sbp.Engine.Tests.Support;
using Sbp.Tensors;

namespace Sbp.Engine.Tests.OpTests;

/// <summary>Invalid arguments fail with messages that name the op and the offending shapes or values.</summary>
public class OpErrorTests : DeviceTest
{
    [Test]
    public void AddOfShapesThatDoNotBroadcastNamesBothShapesAndTheOp()
    {
        var ex = Assert.Throws<ShapeMismatchException>(() => Sbp.Ops.Add(T(new float[12], 3, 4), T(new float[5], 5)));
        Assert.That(ex!.Message, Does.Contain("add").And.Contain("[3, 4]").And.Contain("[5]"));
    }

    [Test]
    public void MatmulInnerDimensionMismatchNamesBothShapes()
    {
        var ex = Assert.Throws<ShapeMismatchException>(() => Sbp.Ops.Matmul(T(new float[15], 3, 5), T(new float[28], 4, 7)));
        Assert.That(ex!.Message, Does.Contain("matmul").And.Contain("[3, 5]").And.Contain("[4, 7]"));
    }

    [Test]
    public void BatchedMatmulWithIncompatibleBatchesNamesBothShapes()
    {
        var ex = Assert.Throws<ShapeMismatchException>(() => Sbp.Ops.Matmul(T(new float[30], 2, 3, 5), T(new float[60], 3, 5, 4)));
        Assert.That(ex!.Message, Does.Contain("matmul").And.Contain("[2, 3, 5]").And.Contain("[3, 5, 4]"));
    }

    [Test]
    public void IndexSelectOutOfRangeNamesTheBadIndex()
    {
        var ex = Assert.Throws<IndexOutOfRangeException>(() => Sbp.Ops.IndexSelect(T(new float[15], 3, 5), 1, Idx(0, 4, 7, 1)));
        Assert.That(ex!.Message, Does.Contain("index_select").And.Contain("7"));
    }

    [Test]
    public void IndexSelectWithANegativeIndexNamesIt()
    {
        var ex = Assert.Throws<IndexOutOfRangeException>(() => Sbp.Ops.IndexSelect(T(new float[15], 3, 5), 0, Idx(1, -1)));
        Assert.That(ex!.Message, Does.Contain("-1"));
    }

    [Test]
    public void IndexAddOutOfRangeNamesTheBadIndex()
    {
        var ex = Assert.Throws<IndexOutOfRangeException>(() => Sbp.Ops.IndexAdd(T(new float[15], 3, 5), 0, Idx(3), T(new float[5], 1, 5)));
        Assert.That(ex!.Message, Does.Contain("index_add").And.Contain("3"));
    }

    [Test]
    public void LinearWithAWrongWeightNamesBothShapes()
    {
        var ex = Assert.Throws<ShapeMismatchException>(() => Sbp.Ops.Linear(T(new float[15], 3, 5), T(new float[28], 7, 4)));
        Assert.That(ex!.Message, Does.Contain("linear").And.Contain("[3, 5]").And.Contain("[7, 4]"));
    }

    [Test]
    public void ConcatWithMismatchedShapesNamesThem()
    {
        var ex = Assert.Throws<ShapeMismatchException>(() => Sbp.Ops.Concat([T(new float[15], 3, 5), T(new float[8], 2, 4)], 0));
        Assert.That(ex!.Message, Does.Contain("concat").And.Contain("[3, 5]").And.Contain("[2, 4]"));
    }
}
