using Sbp.Autograd;
using Sbp.Memory;
using Sbp.Tensors;

namespace Sbp.Engine.Tests.Autograd;

public class TapeTests
{
    Device _device = null!;

    [SetUp]
    public void NewDevice() => _device = Device.CreateCpu("tape-test");

    Tensor Leaf(float[] data, params int[] shape)
    {
        var t = Tensor.FromArray(data, new Shape(shape), _device);
        t.RequiresGrad = true;
        return t;
    }

    static float[] Seq(int n, float scale = 0.1f) => Enumerable.Range(0, n).Select(i => (i % 7 - 3) * scale).ToArray();

    [Test]
    public void SavedBytesAreExactPerOpAndMatchThePoolCategory()
    {
        using var scope = TensorScope.Begin();
        var x = Leaf(Seq(4 * 6), 4, 6);
        var w = Tensor.FromArray(Seq(5 * 6), new Shape(5, 6), _device, MemoryCategory.Parameter);
        w.RequiresGrad = true;
        using var tape = Tape.Begin();
        var h = Ops.Linear(x, w);     // saves x (96 B); w is a parameter, not counted
        var g = Ops.Gelu(h);          // saves h (80 B)
        var e = Ops.Exp(g);           // saves its output e (80 B)
        var s = Ops.Softmax(e, 1);    // saves its output (80 B)
        var loss = Ops.Sum(s);        // saves nothing

        Assert.That(tape.Nodes.Select(n => n.Op), Is.EqualTo(new[] { "linear", "gelu", "exp", "softmax", "sum" }));
        Assert.That(tape.Nodes.Select(n => n.SavedBytes), Is.EqualTo(new long[] { 96, 80, 80, 80, 0 }));
        long expected = x.Bytes + h.Bytes + e.Bytes + s.Bytes;
        Assert.That(tape.SavedBytes, Is.EqualTo(expected));
        Assert.That(_device.Pool.InUse(MemoryCategory.SavedActivation), Is.EqualTo(expected));
        Assert.That(tape.SavedBytesByOp().Sum(r => r.Bytes), Is.EqualTo(expected));
        tape.Backward(loss);
        Assert.That(tape.SavedBytes, Is.EqualTo(0));
        Assert.That(_device.Pool.InUse(MemoryCategory.SavedActivation), Is.EqualTo(0));
        w.Dispose();
    }

    [Test]
    public void ATensorSavedByTwoOpsIsCountedOnce()
    {
        using var scope = TensorScope.Begin();
        var x = Leaf(Seq(15), 3, 5);
        using var tape = Tape.Begin();
        var e = Ops.Exp(x);      // saves e
        var sq = Ops.Mul(e, e);  // saves e twice (as a and as b)
        var loss = Ops.Sum(sq);
        Assert.That(tape.Nodes[0].SavedBytes, Is.EqualTo(60));
        Assert.That(tape.Nodes[1].SavedBytes, Is.EqualTo(60));
        Assert.That(tape.SavedBytes, Is.EqualTo(60));
        Assert.That(_device.Pool.InUse(MemoryCategory.SavedActivation), Is.EqualTo(60));
        tape.Backward(loss);
        // d/dx sum(exp(x)^2) = 2 exp(2x)
        var xs = x.ToArray();
        Assert.That(x.Grad!.ToArray(), Is.EqualTo(xs.Select(v => 2 * MathF.Exp(2 * v)).ToArray()).Within(1e-4));
    }

    [Test]
    public void BackwardFreesSavedTensorsAsItGoes()
    {
        using var scope = TensorScope.Begin();
        var x = Leaf(Seq(12), 3, 4);
        using var tape = Tape.Begin();
        long seenInFirstBackward = -1;
        // A custom identity op recorded first: its backward runs last and sees what is still held.
        var probe = Tape.Record("probe", Ops.Mul(x, 1f).Detach(), [x], [], ctx =>
        {
            seenInFirstBackward = tape.SavedBytes;
            return [ctx.Grad];
        });
        var y = Ops.Exp(Ops.Gelu(probe));
        var loss = Ops.Sum(y);
        Assert.That(tape.SavedBytes, Is.EqualTo(2 * 48));
        tape.Backward(loss);
        Assert.That(seenInFirstBackward, Is.EqualTo(0), "exp and gelu freed their saved tensors before the probe ran");
        Assert.That(x.Grad, Is.Not.Null);
    }

    [Test]
    public void MemoryReturnsExactlyToBaselineAfterForwardBackwardAndScope()
    {
        var w1 = Tensor.FromArray(Seq(7 * 5), new Shape(7, 5), _device, MemoryCategory.Parameter);
        var w2 = Tensor.FromArray(Seq(3 * 7, 0.05f), new Shape(3, 7), _device, MemoryCategory.Parameter);
        w1.RequiresGrad = w2.RequiresGrad = true;
        long baseline = _device.Pool.InUseBytes;
        for (int step = 0; step < 3; step++)
        {
            using (var scope = TensorScope.Begin())
            using (var tape = Tape.Begin())
            {
                var x = Tensor.FromArray(Seq(2 * 9 * 5, 0.3f), new Shape(2, 9, 5), _device);
                var logits = Ops.Linear(Ops.Relu(Ops.Linear(x, w1)), w2);
                var loss = Ops.Mean(Ops.Neg(Ops.LogSoftmax(logits, -1)));
                tape.Backward(loss);
            }
            var stats = _device.Pool.Stats();
            Assert.That(stats.InUse(MemoryCategory.Temporary), Is.EqualTo(0));
            Assert.That(stats.InUse(MemoryCategory.SavedActivation), Is.EqualTo(0));
            Assert.That(stats.InUse(MemoryCategory.Gradient), Is.EqualTo(w1.Bytes + w2.Bytes));
            Assert.That(stats.InUseBytes, Is.EqualTo(baseline + w1.Bytes + w2.Bytes));
        }
        w1.ZeroGrad();
        w2.ZeroGrad();
        Assert.That(_device.Pool.InUseBytes, Is.EqualTo(baseline));
        w1.Dispose();
        w2.Dispose();
        Assert.That(_device.Pool.InUseBytes, Is.EqualTo(0));
    }

    [Test]
    public void SecondBackwardThroughAFreedTapeIsAClearError()
    {
        using var scope = TensorScope.Begin();
        var x = Leaf(Seq(6), 6);
        using var tape = Tape.Begin();
        var loss = Ops.Sum(Ops.Exp(x));
        tape.Backward(loss);
        var ex = Assert.Throws<InvalidOperationException>(() => tape.Backward(loss));
        Assert.That(ex!.Message, Does.Contain("already ran backward").And.Contain("new Tape"));
    }

    [Test]
    public void GradientsAccumulateAcrossBackwardPasses()
    {
        using var scope = TensorScope.Begin();
        var x = Leaf([0.5f, -1f, 2f], 3);
        for (int i = 0; i < 2; i++)
        {
            using var tape = Tape.Begin();
            tape.Backward(Ops.Sum(Ops.Mul(x, 3f)));
        }
        Assert.That(x.Grad!.ToArray(), Is.EqualTo(new[] { 6f, 6f, 6f }));
        Assert.That(_device.Pool.InUse(MemoryCategory.Gradient), Is.EqualTo(12));
        x.ZeroGrad();
        Assert.That(x.Grad, Is.Null);
    }

    [Test]
    public void ATensorUsedOnSeveralPathsGetsTheSumOfTheirGradients()
    {
        using var scope = TensorScope.Begin();
        var x = Leaf([0.5f, -1f, 2f], 3);
        using var tape = Tape.Begin();
        var a = Ops.Add(x, x);                 // 2x
        var b = Ops.Mul(x, x);                 // x^2
        var c = Ops.Concat([x, Ops.Exp(x)], 0);
        var loss = Ops.Add(Ops.Add(Ops.Sum(a), Ops.Sum(b)), Ops.Sum(c));
        tape.Backward(loss);
        var xs = x.ToArray();
        // d/dx [2x + x^2 + x + e^x] = 3 + 2x + e^x
        Assert.That(x.Grad!.ToArray(), Is.EqualTo(xs.Select(v => 3 + 2 * v + MathF.Exp(v)).ToArray()).Within(1e-5));
    }

    [Test]
    public void NoGradRecordsNothing()
    {
        using var scope = TensorScope.Begin();
        var x = Leaf(Seq(5), 5);
        using var tape = Tape.Begin();
        Tensor y;
        using (Tape.NoGrad())
        {
            Assert.That(Tape.IsGradEnabled, Is.False);
            y = Ops.Exp(x);
        }
        Assert.That(Tape.IsGradEnabled, Is.True);
        Assert.That(tape.Nodes, Is.Empty);
        Assert.That(y.IsLeaf, Is.True);
        Assert.That(y.RequiresGrad, Is.False);
        Assert.That(tape.SavedBytes, Is.EqualTo(0));
        var ex = Assert.Throws<InvalidOperationException>(() => tape.Backward(Ops.Sum(y)));
        Assert.That(ex!.Message, Does.Contain("not produced by an op recorded"));
    }

    [Test]
    public void WithoutAnOpenTapeNothingIsRecorded()
    {
        using var scope = TensorScope.Begin();
        var x = Leaf(Seq(5), 5);
        var y = Ops.Exp(x);
        Assert.That(y.IsLeaf, Is.True);
        Assert.That(_device.Pool.InUse(MemoryCategory.SavedActivation), Is.EqualTo(0));
    }

    [Test]
    public void NonScalarLossNeedsAnOutputGradient()
    {
        using var scope = TensorScope.Begin();
        var x = Leaf([1f, 2f, 3f], 3);
        using var tape = Tape.Begin();
        var y = Ops.Mul(x, x);
        var ex = Assert.Throws<ShapeMismatchException>(() => tape.Backward(y));
        Assert.That(ex!.Message, Does.Contain("[3]").And.Contain("Sum"));
        tape.Backward(y, Tensor.FromArray([1f, 0f, -1f], new Shape(3), _device));
        Assert.That(x.Grad!.ToArray(), Is.EqualTo(new[] { 2f, 0f, -6f }));
    }

    [Test]
    public void BranchesThatDoNotReachTheLossAreFreedAndGetNoGradient()
    {
        using var scope = TensorScope.Begin();
        var x = Leaf(Seq(4), 4);
        var unused = Leaf(Seq(4), 4);
        using var tape = Tape.Begin();
        _ = Ops.Exp(Ops.Mul(unused, x));
        var loss = Ops.Sum(Ops.Gelu(x));
        tape.Backward(loss);
        Assert.That(unused.Grad, Is.Null);
        Assert.That(tape.Nodes.All(n => n.IsFreed), Is.True);
        Assert.That(_device.Pool.InUse(MemoryCategory.SavedActivation), Is.EqualTo(0));
    }

    [Test]
    public void DisposingATapeWithoutBackwardReturnsSavedTensorsToTheirOwners()
    {
        using var scope = TensorScope.Begin();
        var x = Leaf(Seq(10), 10);
        Tensor y;
        using (var tape = Tape.Begin())
        {
            y = Ops.Exp(x);
            Assert.That(_device.Pool.InUse(MemoryCategory.SavedActivation), Is.EqualTo(40));
        }
        Assert.That(Tape.Current, Is.Null);
        Assert.That(_device.Pool.InUse(MemoryCategory.SavedActivation), Is.EqualTo(0));
        Assert.That(_device.Pool.InUse(MemoryCategory.Temporary), Is.EqualTo(x.Bytes + y.Bytes));
        Assert.That(y.ToArray()[0], Is.EqualTo(MathF.Exp(-0.3f)).Within(1e-6));
    }

    [Test]
    public void AFailingBackwardRuleLeavesNothingAllocated()
    {
        var x = Tensor.FromArray(Seq(8), new Shape(8), _device);
        x.RequiresGrad = true;
        using (var scope = TensorScope.Begin())
        using (var tape = Tape.Begin())
        {
            var y = Tape.Record("broken", Ops.Exp(x).Detach(), [x], [x], _ => throw new InvalidOperationException("boom"));
            var loss = Ops.Sum(Ops.Gelu(y));
            var ex = Assert.Throws<InvalidOperationException>(() => tape.Backward(loss));
            Assert.That(ex!.Message, Is.EqualTo("boom"));
            Assert.That(tape.IsFreed, Is.True);
        }
        Assert.That(_device.Pool.InUseBytes, Is.EqualTo(x.Bytes));
        x.Dispose();
    }

    [Test]
    public void InputsDisposedBeforeBackwardAreNotNeeded()
    {
        var w = Tensor.FromArray(Seq(6), new Shape(2, 3), _device, MemoryCategory.Parameter);
        w.RequiresGrad = true;
        using var tape = Tape.Begin();
        Tensor loss;
        using (var scope = TensorScope.Begin())
        {
            var x = Tensor.FromArray(Seq(12, 0.2f), new Shape(4, 3), _device);
            loss = scope.Keep(Ops.Sum(Ops.Gelu(Ops.Linear(x, w))));
        }
        // x and every intermediate were disposed with the scope; the tape holds what backward needs.
        tape.Backward(loss);
        loss.Dispose();
        Assert.That(w.Grad, Is.Not.Null);
        Assert.That(_device.Pool.InUseBytes, Is.EqualTo(w.Bytes + w.Grad!.Bytes));
        w.Dispose();
        Assert.That(_device.Pool.InUseBytes, Is.EqualTo(0));
    }
}
