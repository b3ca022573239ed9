using Sbp.Backends;
using Sbp.Backends.Cpu;
using Sbp.Engine.Tests.Support;
using Sbp.Tensors;

namespace Sbp.Engine.Tests.Backends.Cpu;

/// <summary>
/// The direct small-channel forward and filter gradient (few input taps: a 3x3x3 stem on RGB) against the vol2col + GEMM path, on specs
/// with padding on every axis, rows whose width is not a multiple of 8 (the overlapping last block), several
/// output-channel blocks and a batch, kernel widths of 5 and 1 (the filter gradient's partial kw blocks); and that the specs it must not take (stride, groups, many taps, narrow rows)
/// give the same results either way. ConvTests checks the GEMM path against the float64 reference.
/// </summary>
public sealed class SmallChannelConvTests : DeviceTest
{
    static readonly ConvSpec[] Specs =
    [
        new(2, 3, 16, 1, new Dim3(4, 9, 11), new Dim3(3, 3, 3), Dim3.All(1), Dim3.All(1), Dim3.All(1)),     // the stem's shape
        new(1, 2, 8, 1, new Dim3(3, 5, 16), new Dim3(1, 3, 3), Dim3.All(1), new Dim3(0, 1, 1), Dim3.All(1)),
        new(3, 4, 24, 1, new Dim3(2, 6, 20), new Dim3(2, 2, 5), Dim3.All(1), new Dim3(1, 0, 2), Dim3.All(1)),
        new(2, 3, 16, 1, new Dim3(3, 7, 16), new Dim3(3, 3, 3), Dim3.All(1), Dim3.All(1), Dim3.All(1)),     // rows of 16: filter too
        new(2, 2, 8, 1, new Dim3(2, 5, 24), new Dim3(1, 2, 5), Dim3.All(1), new Dim3(0, 1, 2), Dim3.All(1)),     // kW 5: 3 + 2 kw
        new(1, 3, 8, 1, new Dim3(3, 4, 8), new Dim3(3, 3, 1), Dim3.All(1), new Dim3(1, 1, 0), Dim3.All(1)),      // kW 1
        new(1, 1, 8, 1, new Dim3(1, 1, 8), new Dim3(1, 1, 1), Dim3.All(1), new Dim3(0, 0, 0), Dim3.All(1)),     // pointwise: GEMM
        new(1, 3, 8, 1, new Dim3(3, 9, 17), new Dim3(3, 3, 3), new Dim3(1, 2, 2), Dim3.All(1), Dim3.All(1)),    // strided: GEMM
        new(1, 8, 16, 1, new Dim3(3, 6, 10), new Dim3(3, 3, 3), Dim3.All(1), Dim3.All(1), Dim3.All(1)),         // 216 taps: GEMM
        new(1, 3, 8, 1, new Dim3(2, 6, 5), new Dim3(1, 3, 3), Dim3.All(1), Dim3.All(1), Dim3.All(1)),           // rows of 5: GEMM
    ];

    float[] Forward(ConvSpec s, float[] x, float[] w)
    {
        var o = s.Output;
        using var tx = T(x, s.Batch, s.InChannels, s.Input.T, s.Input.H, s.Input.W);
        using var tw = T(w, s.OutChannels, s.InChannels, s.Kernel.T, s.Kernel.H, s.Kernel.W);
        using var y = Tensor.Empty(new Shape(s.Batch, s.OutChannels, o.T, o.H, o.W), Device);
        CpuBackend.Instance.ConvForward(s, tx, tw, y);
        return y.ToArray();
    }

    float[] Filter(ConvSpec s, float[] x, float[] dy)
    {
        var o = s.Output;
        using var tx = T(x, s.Batch, s.InChannels, s.Input.T, s.Input.H, s.Input.W);
        using var tg = T(dy, s.Batch, s.OutChannels, o.T, o.H, o.W);
        using var dw = Tensor.Empty(new Shape(s.OutChannels, s.InChannels, s.Kernel.T, s.Kernel.H, s.Kernel.W), Device);
        CpuBackend.Instance.ConvBackwardFilter(s, tx, tg, dw);
        return dw.ToArray();
    }

    static T2 OnGemmPath<T2>(Func<T2> body)
    {
        CpuBackend.UseSmallChannelKernels = false;
        try
        {
            return body();
        }
        finally
        {
            CpuBackend.UseSmallChannelKernels = true;
        }
    }

    [Test]
    public void TheDirectFilterGradientMatchesTheGemmPath()
    {
        Assert.That(Specs.Select(s => CpuBackend.IsSmallChannelFilter(s)), Is.EqualTo(new[] { false, true, false, true, true, true, false, false, false, false }),
            "which specs the direct filter gradient takes (rows in whole eights)");
        int seed = 100;
        foreach (var s in Specs)
        {
            var x = Rand.Uniform(seed++, (int)(s.Batch * s.InChannels * s.Input.Volume));
            var dy = Rand.Uniform(seed++, (int)(s.Batch * s.OutChannels * s.Output.Volume));
            var fast = Filter(s, x, dy);
            var gemm = OnGemmPath(() => Filter(s, x, dy));
            Assert.That(fast, Is.EqualTo(gemm).Within(1e-4f), $"{s}: filter gradient");
        }
    }

    [Test]
    public void TheDirectForwardMatchesTheGemmPath()
    {
        Assert.That(Specs.Select(s => CpuBackend.IsSmallChannel(s)), Is.EqualTo(new[] { true, true, true, true, true, true, false, false, false, false }),
            "which specs the direct forward takes");
        int seed = 1;
        foreach (var s in Specs)
        {
            var x = Rand.Uniform(seed++, (int)(s.Batch * s.InChannels * s.Input.Volume));
            var w = Rand.Uniform(seed++, (int)(s.OutChannels * s.InChannels * s.Kernel.Volume));
            var fast = Forward(s, x, w);
            var gemm = OnGemmPath(() => Forward(s, x, w));
            Assert.That(fast, Is.EqualTo(gemm).Within(1e-5f), $"{s}: forward");
        }
    }
}
