using Sbp.Autograd;
using Sbp.Engine.Tests.Support;
using Sbp.Tensors;

namespace Sbp.Engine.Tests.Backends.Cpu;

/// <summary>
/// Convolutions on 16-bit input and weight (autocast) on every CPU path (vol2col, pointwise, depthwise, patches, groups): the
/// output must be the Float32 convolution on the exact widenings, rounded once, and the input and weight gradients those of
/// that Float32 convolution for the upstream gradient rounded to the 16-bit type, rounded to it (PyTorch's autocast backward,
/// cuDNN's 16-bit backward), bit for bit.
/// </summary>
public sealed class SixteenBitConvTests : DeviceTest
{
    // x shape, weight shape, stride, padding, groups
    static IEnumerable<TestCaseData> Cases()
    {
        foreach (var dt in new[] { DType.BFloat16, DType.Float16 })
        {
            yield return new TestCaseData(dt, new[] { 2, 3, 4, 9, 9 }, new[] { 5, 3, 3, 3, 3 }, new[] { 1, 2, 2 }, new[] { 1, 1, 1 }, 1).SetName($"{dt}: 3x3x3, stride (1, 2, 2), padded (vol2col)");
            yield return new TestCaseData(dt, new[] { 2, 4, 3, 5, 5 }, new[] { 6, 4, 1, 1, 1 }, new[] { 1 }, new[] { 0 }, 1).SetName($"{dt}: pointwise");
            yield return new TestCaseData(dt, new[] { 1, 4, 3, 6, 6 }, new[] { 4, 1, 3, 3, 3 }, new[] { 1 }, new[] { 1 }, 4).SetName($"{dt}: depthwise");
            yield return new TestCaseData(dt, new[] { 1, 3, 4, 8, 8 }, new[] { 5, 3, 2, 4, 4 }, new[] { 2, 4, 4 }, new[] { 0 }, 1).SetName($"{dt}: patches 2x4x4");
            yield return new TestCaseData(dt, new[] { 2, 4, 3, 7, 7 }, new[] { 6, 2, 1, 3, 3 }, new[] { 1 }, new[] { 0, 1, 1 }, 2).SetName($"{dt}: grouped (1, 3, 3)");
        }
    }

    [TestCaseSource(nameof(Cases))]
    public void ConvolutionOn16BitOperandsIsTheFloat32OneOnTheirWideningsBitForBit(DType dt, int[] xShape, int[] wShape, int[] stride, int[] padding, int groups)
    {
        var xs = T(Rand.Uniform(81, Ref.Numel(xShape), -2f, 2f), xShape);
        var ws = T(Rand.Uniform(82, Ref.Numel(wShape), -1f, 1f), wShape);
        xs.RequiresGrad = ws.RequiresGrad = true;
        Tensor y;
        using (var tape = Tape.Begin())
        {
            y = Ops.Conv3d(xs.To(dt), ws.To(dt), null, stride, padding, groups: groups);
            tape.Backward(Ops.Sum(Ops.Mul(y.To(DType.Float32), Upstream(y.Shape))));
        }
        var xw = xs.To(dt).To(DType.Float32).Detach();
        var ww = ws.To(dt).To(DType.Float32).Detach();
        xw.RequiresGrad = ww.RequiresGrad = true;
        Tensor want;
        using (var tape = Tape.Begin())
        {
            want = Ops.Conv3d(xw, ww, null, stride, padding, groups: groups);
            tape.Backward(Ops.Sum(Ops.Mul(want, Upstream(want.Shape).To(dt).To(DType.Float32))));
        }
        Assert.Multiple(() =>
        {
            Assert.That(y.DType, Is.EqualTo(dt));
            Assert.That(y.ToArray(), Is.EqualTo(want.To(dt).ToArray()), "the Float32 convolution rounded once");
            Assert.That(xs.Grad!.ToArray(), Is.EqualTo(xw.Grad!.To(dt).ToArray()), "dx");
            Assert.That(ws.Grad!.ToArray(), Is.EqualTo(ww.Grad!.To(dt).ToArray()), "dw");
        });
    }

    Tensor Upstream(Shape shape) => T(Rand.Uniform(83, (int)shape.Numel), shape.ToArray());
}
