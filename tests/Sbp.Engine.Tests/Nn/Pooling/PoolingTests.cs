using Sbp.Autograd;
using Sbp.Engine.Tests.Support;
using Sbp.Tensors;

namespace Sbp.Engine.Tests.Nn.Pooling;

/// <summary>One pooling configuration; kernel, stride and padding are given per axis (stride null: the kernel).</summary>
public sealed record PoolCase(string Name, int[] X, bool Max, int[] Kernel, int[]? Stride, int[] Padding, bool CountIncludePad = true)
{
    public bool ThreeD => X.Length == 5;

    public Tensor Run(Tensor x) => (Max, ThreeD) switch
    {
        (true, true) => Ops.MaxPool3d(x, Kernel, Stride, Padding),
        (true, false) => Ops.MaxPool2d(x, Kernel, Stride, Padding),
        (false, true) => Ops.AvgPool3d(x, Kernel, Stride, Padding, CountIncludePad),
        (false, false) => Ops.AvgPool2d(x, Kernel, Stride, Padding, CountIncludePad),
    };

    public RefTensor Reference(RefTensor x) => ThreeD
        ? PoolReference.Pool3d(x, Kernel, Stride ?? Kernel, Padding, Max, CountIncludePad)
        : PoolReference.Pool2d(x, Kernel, Stride ?? Kernel, Padding, Max, CountIncludePad);

    public override string ToString() => Name;
}

public sealed class PoolingTests : DeviceTest
{
    public static readonly PoolCase[] Cases =
    [
        new("max_pool3d 2x2x2", [2, 3, 4, 5, 6], true, [2, 2, 2], null, [0, 0, 0]),
        new("max_pool3d 3x1x2 stride (2,1,2) padding (1,0,1)", [1, 2, 5, 7, 6], true, [3, 1, 2], [2, 1, 2], [1, 0, 1]),
        new("max_pool3d overlapping 3x3x3 stride 1 padding 1", [1, 2, 3, 4, 5], true, [3, 3, 3], [1, 1, 1], [1, 1, 1]),
        new("avg_pool3d include pad", [2, 2, 5, 4, 6], false, [3, 2, 3], [2, 1, 2], [1, 1, 1]),
        new("avg_pool3d exclude pad", [2, 2, 5, 4, 6], false, [3, 2, 3], [2, 1, 2], [1, 1, 1], CountIncludePad: false),
        new("avg_pool3d default stride", [1, 3, 4, 7, 5], false, [2, 3, 2], null, [0, 0, 0]),
        new("max_pool2d 3x3 stride 2 padding 1", [2, 3, 7, 6], true, [3, 3], [2, 2], [1, 1]),
        new("max_pool2d 2x2", [1, 2, 5, 7], true, [2, 2], null, [0, 0]),
        new("avg_pool2d include pad", [2, 2, 7, 5], false, [3, 2], [2, 1], [1, 1]),
        new("avg_pool2d exclude pad", [2, 2, 7, 5], false, [3, 2], [2, 1], [1, 1], CountIncludePad: false),
    ];

    // Max pooling: distinct values at least 0.06 apart, so the finite-difference step (0.01) never changes the argmax.
    static GradInput Input(PoolCase c, int seed) => c.Max ? GradInput.Distinct(seed, c.X) : GradInput.Uniform(seed, c.X);

    [TestCaseSource(nameof(Cases))]
    public void Gradients_MatchFiniteDifferences(PoolCase c) =>
        GradCheck.Check(c.Name, xs => c.Run(xs[0]), Input(c, 7));

    [TestCaseSource(nameof(Cases))]
    public void Forward_MatchesFloat64Reference(PoolCase c)
    {
        var xd = Input(c, 8).Data;
        Ref.AssertClose(c.Name, c.Run(T(xd, c.X)), c.Reference(RefTensor.Of(xd, c.X)), rtol: 1e-5, atol: 1e-6);
    }

    [Test]
    public void Forward_MatchesFloat64Reference_OnParallelSizes()
    {
        int[] shape = [2, 6, 9, 14, 13];
        var xd = Rand.Uniform(9, Ref.Numel(shape));
        var x = T(xd, shape);
        var rx = RefTensor.Of(xd, shape);
        Ref.AssertClose("max_pool3d", Ops.MaxPool3d(x, [3], [2], [1]), PoolReference.Pool3d(rx, [3, 3, 3], [2, 2, 2], [1, 1, 1], true, true));
        Ref.AssertClose("avg_pool3d", Ops.AvgPool3d(x, [3, 2, 3], [1, 2, 2], [1, 1, 0], countIncludePad: false),
            PoolReference.Pool3d(rx, [3, 2, 3], [1, 2, 2], [1, 1, 0], false, false));
    }

    [Test]
    public void MaxPoolBackward_RoutesTiesToTheFirstMaximumInWindowOrder()
    {
        // One 2x2x2 window of equal values, and a 2-D window whose maximum appears twice.
        var x = T(new float[8], 1, 1, 2, 2, 2);
        x.RequiresGrad = true;
        using (var tape = Tape.Begin())
            tape.Backward(Ops.Sum(Ops.MaxPool3d(x, [2])));
        Assert.That(x.Grad!.ToArray(), Is.EqualTo(new float[] { 1, 0, 0, 0, 0, 0, 0, 0 }));

        var x2 = T([1, 5, 5, 2, 3, 5], 1, 1, 2, 3);
        x2.RequiresGrad = true;
        using (var tape = Tape.Begin())
            tape.Backward(Ops.Sum(Ops.MaxPool2d(x2, [2, 3])));
        Assert.That(x2.Grad!.ToArray(), Is.EqualTo(new float[] { 0, 1, 0, 0, 0, 0 }));
    }

    [Test]
    public void MaxPool_OverlappingWindows_AddTheirGradients()
    {
        // Stride 1, kernel 2: the middle maximum wins both windows.
        var x = T([1, 9, 2], 1, 1, 1, 3);
        x.RequiresGrad = true;
        using (var tape = Tape.Begin())
            tape.Backward(Ops.Sum(Ops.MaxPool2d(x, [1, 2], [1, 1])));
        Assert.That(x.Grad!.ToArray(), Is.EqualTo(new float[] { 0, 2, 0 }));
    }

    [Test]
    public void AvgPool_CountIncludePad_ChangesOnlyTheBorderDivisor()
    {
        var x = T([1, 2, 3, 4], 1, 1, 1, 4);
        Assert.That(Ops.AvgPool2d(x, [1, 3], [1, 1], [0, 1]).ToArray(), Is.EqualTo(new[] { 1f, 2f, 3f, 7f / 3f }).Within(1e-6f));
        Assert.That(Ops.AvgPool2d(x, [1, 3], [1, 1], [0, 1], countIncludePad: false).ToArray(), Is.EqualTo(new[] { 1.5f, 2f, 3f, 3.5f }).Within(1e-6f));
    }

    [Test]
    public void MaxPool_SavesOnlyTheInt32Indices_AvgPoolSavesNothing()
    {
        var x = T(Rand.Uniform(10, 2 * 3 * 4 * 6 * 6), 2, 3, 4, 6, 6);
        x.RequiresGrad = true;
        using (var tape = Tape.Begin())
        {
            var y = Ops.MaxPool3d(x, [2]);
            Assert.That(tape.SavedBytes, Is.EqualTo(y.Numel * sizeof(int)));
        }
        using (var tape = Tape.Begin())
        {
            Ops.AvgPool3d(x, [2]);
            Assert.That(tape.SavedBytes, Is.EqualTo(0));
        }
    }

    [Test]
    public void GlobalAvgPool_IsTheMeanOverSpatialAxes()
    {
        int[] shape = [2, 3, 4, 5, 3];
        var xd = Rand.Uniform(11, Ref.Numel(shape));
        var y = Ops.GlobalAvgPool(T(xd, shape));
        Ref.AssertClose("global_avg_pool", y, Ref.Mean(RefTensor.Of(xd, shape), [2, 3, 4]));
        Assert.That(Ops.GlobalAvgPool(T(xd, 2, 3, 20, 3)).Shape, Is.EqualTo(new Shape(2, 3)));
    }

    [Test]
    public void GlobalAvgPool_Gradients_MatchFiniteDifferences()
    {
        GradCheck.Check("global_avg_pool 3-D", xs => Ops.GlobalAvgPool(xs[0]), GradInput.Uniform(12, 2, 3, 3, 2, 3));
        GradCheck.Check("global_avg_pool 2-D", xs => Ops.GlobalAvgPool(xs[0]), GradInput.Uniform(13, 3, 2, 5, 3));
    }

    // ---- errors -----------------------------------------------------------------------------

    [Test]
    public void PaddingLargerThanHalfTheKernel_IsRejected()
    {
        var x = Tensor.Zeros(new Shape(1, 1, 4, 4, 4), Device);
        Assert.That(() => Ops.MaxPool3d(x, [2, 3, 3], null, [1, 2, 1]),
            Throws.ArgumentException.With.Message.Contain("max_pool3d").And.Message.Contain("half the kernel"));
        Assert.That(() => Ops.AvgPool2d(Tensor.Zeros(new Shape(1, 1, 4, 4), Device), [2], null, [2]),
            Throws.ArgumentException.With.Message.Contain("avg_pool2d").And.Message.Contain("half the kernel"));
    }

    [Test]
    public void InputSmallerThanTheKernel_IsRejected()
    {
        var x = Tensor.Zeros(new Shape(1, 1, 2, 5, 5), Device);
        Assert.That(() => Ops.MaxPool3d(x, [3]), Throws.InstanceOf<ShapeMismatchException>().With.Message.Contain("smaller than kernel"));
    }

    [Test]
    public void WrongRankOrArguments_AreRejected()
    {
        var x4 = Tensor.Zeros(new Shape(1, 1, 4, 4), Device);
        Assert.Multiple(() =>
        {
            Assert.That(() => Ops.MaxPool3d(x4, [2]), Throws.InstanceOf<ShapeMismatchException>().With.Message.Contain("[N, C, T, H, W]"));
            Assert.That(() => Ops.MaxPool2d(x4, [2, 2, 2]), Throws.ArgumentException.With.Message.Contain("2 values"));
            Assert.That(() => Ops.AvgPool2d(x4, [2], [0]), Throws.ArgumentException.With.Message.Contain("stride"));
            Assert.That(() => Ops.GlobalAvgPool(Tensor.Zeros(new Shape(2, 3), Device)), Throws.InstanceOf<ShapeMismatchException>());
        });
    }
}
