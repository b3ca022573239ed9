using Sbp.Tensors;

namespace Sbp.Engine.Tests.Tensors;

public class ShapeTests
{
    [TestCase(new[] { 3, 1, 5 }, new[] { 4, 1 }, new[] { 3, 4, 5 })]
    [TestCase(new[] { 5 }, new[] { 3, 5 }, new[] { 3, 5 })]
    [TestCase(new int[0], new[] { 2, 3 }, new[] { 2, 3 })]
    [TestCase(new[] { 3, 1 }, new[] { 1, 4 }, new[] { 3, 4 })]
    [TestCase(new[] { 2, 1, 3 }, new[] { 7, 1, 1, 3 }, new[] { 7, 2, 1, 3 })]
    public void BroadcastFollowsNumPy(int[] a, int[] b, int[] expected)
    {
        Assert.That(Shape.Broadcast(new Shape(a), new Shape(b)), Is.EqualTo(new Shape(expected)));
        Assert.That(Shape.Broadcast(new Shape(b), new Shape(a)), Is.EqualTo(new Shape(expected)));
    }

    [Test]
    public void IncompatibleShapesNameBothShapesAndTheOp()
    {
        var ex = Assert.Throws<ShapeMismatchException>(() => Shape.Broadcast(new Shape(3, 4), new Shape(5), "add"));
        Assert.That(ex!.Message, Does.Contain("add").And.Contain("[3, 4]").And.Contain("[5]"));
    }

    [Test]
    public void StridesAreRowMajorAndBroadcastStridesAreZeroOnExpandedAxes()
    {
        var s = new Shape(2, 3, 4);
        Assert.That(s.Strides(), Is.EqualTo(new long[] { 12, 4, 1 }));
        Assert.That(s.Numel, Is.EqualTo(24));
        Assert.That(new Shape(3, 1).BroadcastStrides(new Shape(2, 3, 4)), Is.EqualTo(new long[] { 0, 1, 0 }));
        Assert.That(new Shape(3, 1).BroadcastsTo(new Shape(2, 3, 4)), Is.True);
        Assert.That(new Shape(3, 2).BroadcastsTo(new Shape(2, 3, 4)), Is.False);
    }

    [Test]
    public void NegativeAxesCountFromTheEnd()
    {
        var s = new Shape(2, 3, 4);
        Assert.That(s[-1], Is.EqualTo(4));
        Assert.That(Shape.NormalizeAxis(-3, 3, "op"), Is.EqualTo(0));
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => Shape.NormalizeAxis(3, 3, "softmax"));
        Assert.That(ex!.Message, Does.Contain("softmax").And.Contain("rank 3"));
    }

    [Test]
    public void ScalarShapeHasOneElement()
    {
        Assert.That(Shape.Scalar.Rank, Is.EqualTo(0));
        Assert.That(Shape.Scalar.Numel, Is.EqualTo(1));
        Assert.Throws<ArgumentException>(() => _ = new Shape(2, -1));
    }
}
