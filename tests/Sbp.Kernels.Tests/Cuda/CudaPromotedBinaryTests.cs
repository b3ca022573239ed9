using Sbp.Backends;
using Sbp.CudaSim;
using Sbp.Tensors;

namespace Sbp.Kernels.Tests.Cuda;

/// <summary>
/// Binary with a 16-bit operand beside a Float32 one (autocast's promotion): binary_b16 on the device and the CPU's row loops
/// both give the bits of the Float32 op on the exact widening.
/// </summary>
public sealed class CudaPromotedBinaryTests : CudaTest
{
    static readonly object[] Cases =
    [
        new object[] { BinaryOp.Add, new[] { 3, 5, 8 }, new[] { 3, 5, 8 }, false, DType.BFloat16 },    // x + a 16-bit branch
        new object[] { BinaryOp.Mul, new[] { 3, 5, 8 }, new[] { 3, 1, 1 }, true, DType.Float16 },      // drop path's per-sample mask
        new object[] { BinaryOp.Div, new[] { 3, 5, 8 }, new[] { 8 }, true, DType.BFloat16 },           // a row of divisors
        new object[] { BinaryOp.Sub, new[] { 3, 5, 8 }, new[] { 5, 1 }, true, DType.Float16 },         // a middle-axis broadcast
        new object[] { BinaryOp.Sub, new[] { 8 }, new[] { 3, 5, 8 }, false, DType.BFloat16 },          // the broadcast one first: widened whole
        new object[] { BinaryOp.Mul, new[] { 5, 8 }, new[] { 3, 1, 8 }, false, DType.Float16 },        // both broadcast: widened whole
    ];

    [TestCaseSource(nameof(Cases))]
    public void PromotedBinaryIsTheFloat32OpOnTheWidening(BinaryOp op, int[] aShape, int[] bShape, bool lowFirst, DType type)
    {
        var outShape = Shape.Broadcast(new Shape(aShape), new Shape(bShape), "test");
        // the 16-bit operand is the one of the output's shape (or, for the last case, the first)
        bool lowIsA = lowFirst || new Shape(aShape) == outShape && new Shape(bShape) != outShape;
        var a = Rand.Uniform(1, (int)new Shape(aShape).Numel, -3f, 3f);
        var b = Rand.Uniform(2, (int)new Shape(bShape).Numel, 0.5f, 3f);
        foreach (var device in new[] { Cpu, Gpu })
        {
            using var ta = Tensor.FromArray(a, new Shape(aShape), device);
            using var tb = Tensor.FromArray(b, new Shape(bShape), device);
            using var low = (lowIsA ? ta : tb).To(type);
            using var wide = low.To(DType.Float32);
            using var expected = Tensor.Empty(outShape, device);
            using var actual = Tensor.Full(outShape, float.NaN, device);
            device.Backend.Binary(op, lowIsA ? wide : ta, lowIsA ? tb : wide, expected);
            device.Backend.Binary(op, lowIsA ? low : ta, lowIsA ? tb : low, actual);
            Assert.That(actual.ToArray(), Is.EqualTo(expected.ToArray()), $"{device.Name}: {op} {type}");
        }
    }

    [Test]
    public void TheResidualAddAndDropPathRunOneKernelEach()
    {
        SimulatorOnly();
        using var x = Tensor.FromArray(Rand.Uniform(3, 120), new Shape(3, 5, 8), Gpu);
        using var branch = Tensor.FromArray(Rand.Uniform(4, 120), new Shape(3, 5, 8), Gpu).To(DType.BFloat16);
        using var mask = Tensor.FromArray([0f, 2f, 2f], new Shape(3, 1, 1), Gpu);
        using var y = Tensor.Empty(new Shape(3, 5, 8), Gpu);
        int Count(string k) => SimulatedCuda.Launches(Gpu).GetValueOrDefault(k);
        int casts = Count("to_f32_bf16"), fused = Count("binary_b16");
        Gpu.Backend.Binary(BinaryOp.Add, x, branch, y);
        Gpu.Backend.Binary(BinaryOp.Mul, branch, mask, y);
        Assert.That((Count("binary_b16") - fused, Count("to_f32_bf16") - casts), Is.EqualTo((2, 0)));
    }
}
