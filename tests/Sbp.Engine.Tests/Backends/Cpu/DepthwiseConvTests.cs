using Sbp.Backends;
using Sbp.Backends.Cpu;
using Sbp.Engine.Tests.Support;
using Sbp.Tensors;

namespace Sbp.Engine.Tests.Backends.Cpu;

/// <summary>
/// The direct depthwise kernels against the vol2col + GEMM path (both backend entry points, all
/// three passes) on specs with channel multipliers, strides (W stride 2 takes the scalar rows),
/// padding and dilation. ConvTests checks both against the float64 reference on small cases.
/// </summary>
public sealed class DepthwiseConvTests : DeviceTest
{
    static readonly ConvSpec[] Specs =
    [
        new(2, 6, 6, 6, new Dim3(4, 9, 11), new Dim3(3, 3, 3), Dim3.All(1), Dim3.All(1), Dim3.All(1)),
        new(1, 4, 8, 4, new Dim3(5, 8, 13), new Dim3(2, 3, 3), new Dim3(1, 2, 2), new Dim3(1, 1, 2), new Dim3(2, 1, 2)),
        new(3, 3, 3, 3, new Dim3(1, 12, 10), new Dim3(1, 5, 5), Dim3.All(1), new Dim3(0, 2, 2), Dim3.All(1)),
        new(1, 5, 5, 5, new Dim3(3, 4, 4), Dim3.All(1), Dim3.All(1), Dim3.All(0), Dim3.All(1)),
    ];

    (float[] Y, float[] Dx, float[] Dw) RunAll(ConvSpec s, float[] x, float[] w, float[] dy)
    {
        var o = s.Output;
        using var tx = T(x, s.Batch, s.InChannels, s.Input.T, s.Input.H, s.Input.W);
        using var tw = T(w, s.OutChannels, 1, s.Kernel.T, s.Kernel.H, s.Kernel.W);
        using var tg = T(dy, s.Batch, s.OutChannels, o.T, o.H, o.W);
        using var y = Tensor.Empty(tg.Shape, Device);
        using var dx = Tensor.Empty(tx.Shape, Device);
        using var dw = Tensor.Empty(tw.Shape, Device);
        var cpu = CpuBackend.Instance;
        cpu.ConvForward(s, tx, tw, y);
        cpu.ConvBackwardData(s, tg, tw, dx);
        cpu.ConvBackwardFilter(s, tx, tg, dw);
        return (y.ToArray(), dx.ToArray(), dw.ToArray());
    }

    [Test]
    public void DirectKernels_MatchTheGemmPath()
    {
        int seed = 1;
        foreach (var s in Specs)
        {
            var x = Rand.Uniform(seed++, (int)(s.Batch * s.InChannels * s.Input.Volume));
            var w = Rand.Uniform(seed++, (int)(s.OutChannels * s.Kernel.Volume));
            var dy = Rand.Uniform(seed++, (int)(s.Batch * s.OutChannels * s.Output.Volume));
            var fast = RunAll(s, x, w, dy);
            CpuBackend.UseDepthwiseKernels = false;
            (float[] Y, float[] Dx, float[] Dw) gemm;
            try
            {
                gemm = RunAll(s, x, w, dy);
            }
            finally
            {
                CpuBackend.UseDepthwiseKernels = true;
            }
            Assert.That(fast.Y, Is.EqualTo(gemm.Y).Within(1e-5f), $"{s}: forward");
            Assert.That(fast.Dx, Is.EqualTo(gemm.Dx).Within(1e-5f), $"{s}: data gradient");
            Assert.That(fast.Dw, Is.EqualTo(gemm.Dw).Within(2e-4f), $"{s}: filter gradient");
        }
    }
}
