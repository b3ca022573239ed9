using System.Runtime.Intrinsics;
using Sbp.Memory;
using Sbp.Tensors;

namespace Sbp.Backends.Cpu;

// The forward of a convolution with few input taps (C kvol <= 128, e.g. a 3x3x3 stem on RGB: 81) by direct loops.
// As vol2col + GEMM its column matrix is 81 rows of the whole output volume: writing it and packing it again for the
// GEMM cost more than the multiply-adds. Here the input is copied once, zero-padded, and every tap is a broadcast
// multiply-add of a shifted input row into 8 output channels' accumulators held in registers. Each task owns its
// output rows and sums run in a fixed order, so results do not depend on the thread count.
public sealed unsafe partial class CpuBackend
{
    /// <summary>Tests turn this off to compare the small-channel kernel with the GEMM path.</summary>
    internal static bool UseSmallChannelKernels { get; set; } = true;

    const int SmallChannelMaxTaps = 128;

    /// <summary>Dense and not pointwise, stride 1, dilation 1, at most 128 input taps, output channels in eights, rows at least 8 wide.</summary>
    internal static bool IsSmallChannel(in ConvSpec s) =>
        UseSmallChannelKernels && Vector256.IsHardwareAccelerated && !s.IsPointwise && s.Groups == 1 && s.Stride == Dim3.All(1) && s.Dilation == Dim3.All(1)
        && (long)s.InChannels * s.Kernel.Volume <= SmallChannelMaxTaps && s.OutChannels % 8 == 0 && s.Output.W >= 8;

    void SmallChannelForward(in ConvSpec s, Tensor x, Tensor weight, Tensor y)
    {
        Dim3 inp = s.Input, k = s.Kernel, o = s.Output, pd = s.Padding;
        int c = s.InChannels, outs = s.OutChannels, taps = checked((int)(c * k.Volume));
        int tp = inp.T + 2 * pd.T, hp = inp.H + 2 * pd.H, wp = inp.W + 2 * pd.W;
        long planeP = (long)tp * hp * wp, rowsPerSample = (long)o.T * o.H;
        // weights as [tap, O]: the 8 outputs of a block are contiguous for the broadcasts
        var wt = new float[(long)taps * outs];
        float* pw = (float*)weight.Pointer;
        for (int oc = 0; oc < outs; oc++)
            for (int t = 0; t < taps; t++) wt[(long)t * outs + oc] = pw[(long)oc * taps + t];
        using var padded = Tensor.Zeros(new Shape(s.Batch, c, tp, hp, wp), x.Device, MemoryCategory.Workspace);
        padded.DetachFromScope();
        nint px = x.Pointer, pp = padded.Pointer, py = y.Pointer;
        CpuLoops.For((long)s.Batch * c * inp.T * inp.H, inp.W, (r0, r1) =>
        {
            for (long r = r0; r < r1; r++)
            {
                long plane = r / ((long)inp.T * inp.H), th = r % ((long)inp.T * inp.H);
                long t = th / inp.H, h = th % inp.H;
                var src = new ReadOnlySpan<float>((float*)px + r * inp.W, inp.W);
                src.CopyTo(new Span<float>((float*)pp + plane * planeP + ((t + pd.T) * hp + h + pd.H) * wp + pd.W, inp.W));
            }
        });
        fixed (float* pwt = wt)
        {
            nint wtp = (nint)pwt;
            CpuLoops.For(s.Batch * rowsPerSample, (long)o.W * outs * taps, (r0, r1) =>
            {
                for (long r = r0; r < r1; r++)
                {
                    long n = r / rowsPerSample, ot = r % rowsPerSample / o.H, oh = r % o.H;
                    float* xs = (float*)pp + n * c * planeP + (ot * hp + oh) * wp;
                    float* ys = (float*)py + n * outs * rowsPerSample * o.W + r % rowsPerSample * o.W;
                    for (int ob = 0; ob < outs; ob += 8)
                        for (int w0 = 0; w0 < o.W; w0 += 8)
                        {
                            int w = Math.Min(w0, o.W - 8);   // the last block overlaps the one before: same values
                            SmallChannelBlock(xs + w, (float*)wtp + ob, ys + (long)ob * rowsPerSample * o.W + w, rowsPerSample * o.W,
                                c, k, planeP, hp, wp, outs);
                        }
                }
            });
        }
    }

    /// <summary>8 outputs (channels ob..ob+7, given by the weight column) at 8 consecutive positions of one row.</summary>
    static void SmallChannelBlock(float* x, float* w, float* y, long outPlane, int c, Dim3 k, long planeP, int hp, int wp, int outs)
    {
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
        for (int ci = 0; ci < c; ci++)
            for (int kt = 0; kt < k.T; kt++)
                for (int kh = 0; kh < k.H; kh++)
                {
                    float* row = x + ci * planeP + ((long)kt * hp + kh) * wp;
                    for (int kw = 0; kw < k.W; kw++, w += outs)
                    {
                        var v = Vector256.Load(row + kw);
                        a0 = Vector256.FusedMultiplyAdd(Vector256.Create(w[0]), v, a0);
                        a1 = Vector256.FusedMultiplyAdd(Vector256.Create(w[1]), v, a1);
                        a2 = Vector256.FusedMultiplyAdd(Vector256.Create(w[2]), v, a2);
                        a3 = Vector256.FusedMultiplyAdd(Vector256.Create(w[3]), v, a3);
                        a4 = Vector256.FusedMultiplyAdd(Vector256.Create(w[4]), v, a4);
                        a5 = Vector256.FusedMultiplyAdd(Vector256.Create(w[5]), v, a5);
                        a6 = Vector256.FusedMultiplyAdd(Vector256.Create(w[6]), v, a6);
                        a7 = Vector256.FusedMultiplyAdd(Vector256.Create(w[7]), v, a7);
                    }
                }
        a0.Store(y);
        a1.Store(y + outPlane);
        a2.Store(y + 2 * outPlane);
        a3.Store(y + 3 * outPlane);
        a4.Store(y + 4 * outPlane);
        a5.Store(y + 5 * outPlane);
        a6.Store(y + 6 * outPlane);
        a7.Store(y + 7 * outPlane);
    }
}
