using Sbp.Memory;
using Sbp.Tensors;

namespace Sbp.Engine.Tests.Tensors;

public class TensorTests
{
    [Test]
    public void FromArrayRoundTripsAndChecksLength()
    {
        var device = Device.CreateCpu("t");
        using var t = Tensor.FromArray([1f, 2f, 3f, 4f, 5f, 6f], new Shape(2, 3), device);
        Assert.That(t.ToArray(), Is.EqualTo(new[] { 1f, 2f, 3f, 4f, 5f, 6f }));
        Assert.That(t.Bytes, Is.EqualTo(24));
        var ex = Assert.Throws<ShapeMismatchException>(() => Tensor.FromArray([1f, 2f], new Shape(3), device));
        Assert.That(ex!.Message, Does.Contain("[3]"));
        using var idx = Tensor.FromArray([2, 0, 1], new Shape(3), device);
        Assert.That(idx.DType, Is.EqualTo(DType.Int32));
        Assert.That(idx.ToIntArray(), Is.EqualTo(new[] { 2, 0, 1 }));
        Assert.Throws<InvalidOperationException>(() => idx.ToArray());
    }

    [Test]
    public void AsSpanReadsAndWritesTheTensorInPlace()
    {
        var device = Device.CreateCpu("span");
        using var t = Tensor.FromArray([1f, 2f, 3f, 4f], new Shape(2, 2), device);
        var span = t.AsSpan();
        Assert.That(span.ToArray(), Is.EqualTo(new[] { 1f, 2f, 3f, 4f }));
        span[3] = -7f;
        Assert.That(t.ToArray(), Is.EqualTo(new[] { 1f, 2f, 3f, -7f }), "a write through the span is the tensor's");
        using var view = t.Reshape(4);
        Assert.That(view.AsSpan()[3], Is.EqualTo(-7f), "a view sees the same memory");
        using var idx = Tensor.FromArray([5, 6], new Shape(2), device);
        idx.AsIntSpan()[0] = 9;
        Assert.That(idx.ToIntArray(), Is.EqualTo(new[] { 9, 6 }));
        Assert.That(() => t.AsIntSpan(), Throws.InvalidOperationException.With.Message.Contains("Float32").And.Message.Contains("AsSpan()"));
        Assert.That(() => idx.AsSpan(), Throws.InvalidOperationException.With.Message.Contains("Int32").And.Message.Contains("AsIntSpan()"));
    }

    [Test]
    public void ReshapeIsAViewThatKeepsMemoryAlive()
    {
        var device = Device.CreateCpu("t");
        var t = Tensor.FromArray([1f, 2f, 3f, 4f, 5f, 6f], new Shape(2, 3), device);
        var v = t.Reshape(3, -1);
        Assert.That(v.Shape, Is.EqualTo(new Shape(3, 2)));
        Assert.That(v.Block, Is.SameAs(t.Block));
        Assert.That(device.Pool.InUseBytes, Is.EqualTo(24)); // one block, two tensors
        t.Dispose();
        Assert.That(v.ToArray(), Is.EqualTo(new[] { 1f, 2f, 3f, 4f, 5f, 6f }));
        v.Dispose();
        Assert.That(device.Pool.InUseBytes, Is.EqualTo(0));
    }

    [Test]
    public void UseAfterDisposeIsAClearError()
    {
        var device = Device.CreateCpu("t");
        var t = Tensor.Zeros(new Shape(4), device);
        t.Dispose();
        t.Dispose(); // idempotent
        var ex = Assert.Throws<ObjectDisposedException>(() => t.ToArray());
        Assert.That(ex!.Message, Does.Contain("disposed").And.Contain("[4]"));
        Assert.Throws<ObjectDisposedException>(() => Ops.Exp(t));
    }

    [Test]
    public void ScopeDisposesWhatWasCreatedInsideExceptKeptTensors()
    {
        var device = Device.CreateCpu("t");
        Tensor kept, inner;
        using (var outer = TensorScope.Begin())
        {
            using (var scope = TensorScope.Begin())
            {
                var a = Tensor.Ones(new Shape(3), device);
                inner = Ops.Exp(a);
                kept = scope.Keep(Ops.Mul(inner, 2f));
                Assert.That(scope.Count, Is.EqualTo(2));
            }
            Assert.That(inner.IsDisposed, Is.True);
            Assert.That(kept.IsDisposed, Is.False);
            Assert.That(device.Pool.InUseBytes, Is.EqualTo(12));
            Assert.That(kept.ToArray()[0], Is.EqualTo(2 * MathF.E).Within(1e-5));
        }
        Assert.That(kept.IsDisposed, Is.True, "kept moved to the outer scope, which disposed it");
        Assert.That(device.Pool.InUseBytes, Is.EqualTo(0));
    }

    [Test]
    public void DetachFromScopeOutlivesTheScope()
    {
        var device = Device.CreateCpu("t");
        Tensor w;
        using (TensorScope.Begin()) w = Tensor.Zeros(new Shape(5), device, MemoryCategory.Parameter).DetachFromScope();
        Assert.That(w.IsDisposed, Is.False);
        w.Dispose();
        Assert.That(device.Pool.InUseBytes, Is.EqualTo(0));
    }

    [Test]
    public void ScopesMustEndInReverseOrder()
    {
        var outer = TensorScope.Begin();
        var inner = TensorScope.Begin();
        Assert.Throws<InvalidOperationException>(() => outer.Dispose());
        inner.Dispose();
        outer.Dispose();
        Assert.That(TensorScope.Current, Is.Null);
    }

    [Test]
    public void OpsRefuseMixedDevicesAndIntTensors()
    {
        var d1 = Device.CreateCpu("one");
        var d2 = Device.CreateCpu("two");
        using var a = Tensor.Ones(new Shape(3), d1);
        using var b = Tensor.Ones(new Shape(3), d2);
        var ex = Assert.Throws<ArgumentException>(() => Ops.Add(a, b));
        Assert.That(ex!.Message, Does.Contain("add").And.Contain("one").And.Contain("two"));
        using var i = Tensor.FromArray([1, 2, 3], new Shape(3), d1);
        var ex2 = Assert.Throws<ArgumentException>(() => Ops.Exp(i));
        Assert.That(ex2!.Message, Does.Contain("exp").And.Contain("Int32"));
    }

    [Test]
    public void RequiresGradOnlyOnFloatLeaves()
    {
        var device = Device.CreateCpu("t");
        using var scope = TensorScope.Begin();
        var i = Tensor.FromArray([1, 2], new Shape(2), device);
        Assert.Throws<InvalidOperationException>(() => i.RequiresGrad = true);
        var x = Tensor.Ones(new Shape(2), device);
        x.RequiresGrad = true;
        using var tape = Sbp.Autograd.Tape.Begin();
        var y = Ops.Exp(x);
        Assert.That(y.IsLeaf, Is.False);
        Assert.That(y.Producer, Is.EqualTo("exp"));
        var ex = Assert.Throws<InvalidOperationException>(() => y.RequiresGrad = false);
        Assert.That(ex!.Message, Does.Contain("exp").And.Contain("Detach"));
        using var d = y.Detach();
        Assert.That(d.IsLeaf && !d.RequiresGrad, Is.True);
    }
}
