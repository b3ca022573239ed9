using System.Runtime.Intrinsics;
using Sbp.Memory;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
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
        int hp = inp.H + 2 * pd.H, wp = inp.W + 2 * pd.W;
        long planeP = (long)(inp.T + 2 * pd.T) * hp * wp, rowsPerSample = (long)o.T * o.H;
        // weights as [tap, O]: the 8 outputs of a block are contiguous for the broadcasts
        var wt = new float[(long)taps * outs];
        float* pw = (float*)weight.Pointer;
        for (int oc = 0; oc < outs; oc++)
            for (int t = 0; t < taps; t++) wt[(long)t * outs + oc] = pw[(long)oc * taps + t];
        using var padded = PaddedInput(s, x);
        nint pp = padded.Pointer, py = y.Pointer;
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

    /// <summary>
    /// x copied into a zeroed [N, C, T + 2 pT, H + 2 pH, W + 2 pW] workspace (outside any scope; the caller disposes it),
    /// with 8 floats of slack after it for the filter kernel's unused lanes.
    /// </summary>
    static Tensor PaddedInput(in ConvSpec s, Tensor x)
    {
        Dim3 inp = s.Input, pd = s.Padding;
        int c = s.InChannels, tp = inp.T + 2 * pd.T, hp = inp.H + 2 * pd.H, wp = inp.W + 2 * pd.W;
        long planeP = (long)tp * hp * wp;
        var padded = Tensor.Zeros(new Shape(checked((int)(s.Batch * c * planeP + 8))), x.Device, MemoryCategory.Workspace);
        padded.DetachFromScope();
        nint px = x.Pointer, pp = padded.Pointer;
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
        return padded;
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

    /// <summary><see cref="IsSmallChannel"/> with rows in whole eights: the filter gradient's lanes never cross a row's end.</summary>
    internal static bool IsSmallChannelFilter(in ConvSpec s) => IsSmallChannel(s) && s.Output.W % 8 == 0;

    /// <summary>
    /// dW[o, (c, kt, kh, kw)] = sum over (n, ot, oh, ow) of dy[n, o, ot, oh, ow] x[n, c, ot + kt - pT, oh + kh - pH, ow + kw - pW]
    /// without a column matrix: per block of output planes (n, ot), each (4 outputs, c, kt, kh, 3 kw) sums its products over
    /// the plane in 12 vector accumulators (lanes: 8 positions), then adds their lane sums to the block's partial. The
    /// blocks depend on the shape only and their partials are summed in order: results do not depend on the thread count.
    /// </summary>
    void SmallChannelBackwardFilter(in ConvSpec s, Tensor x, Tensor dy, Tensor dweight)
    {
        Dim3 inp = s.Input, k = s.Kernel, o = s.Output, pd = s.Padding;
        int c = s.InChannels, outs = s.OutChannels, taps = checked((int)(c * k.Volume)), hp = inp.H + 2 * pd.H, wp = inp.W + 2 * pd.W;
        long planeP = (long)(inp.T + 2 * pd.T) * hp * wp, planes = (long)s.Batch * o.T, outPlane = (long)o.H * o.W;
        int size = outs * taps;
        // at most 64 blocks, and partials of at most 16 MB (wide layers): the count depends on the shape only
        int blocks = (int)Math.Clamp(Math.Min(planes, (4L << 20) / size), 1, 64);
        using var padded = PaddedInput(s, x);
        using var partials = Tensor.Zeros(new Shape(blocks, size), x.Device, MemoryCategory.Workspace);
        partials.DetachFromScope();
        nint pp = padded.Pointer, pg = dy.Pointer, pb = partials.Pointer;
        CpuLoops.For(blocks, (planes + blocks - 1) / blocks * outPlane * size, (b0, b1) =>
        {
            for (long b = b0; b < b1; b++)
                for (long plane = planes * b / blocks; plane < planes * (b + 1) / blocks; plane++)
                {
                    long n = plane / o.T, ot = plane % o.T;
                    float* xs = (float*)pp + n * c * planeP + ot * hp * wp;
                    float* g = (float*)pg + (n * outs * o.T + ot) * outPlane;
                    float* part = (float*)pb + b * size;
                    for (int ob = 0; ob < outs; ob += 4)
                        for (int ci = 0; ci < c; ci++)
                            for (int kt = 0; kt < k.T; kt++)
                                for (int kh = 0; kh < k.H; kh++)
                                    for (int kw = 0; kw < k.W; kw += 3)
                                        SmallChannelFilterBlock(xs + ci * planeP + ((long)kt * hp + kh) * wp + kw, g + (long)ob * o.T * outPlane,
                                            o.T * outPlane, o.H, o.W, wp, part + (long)ob * taps + ((ci * k.T + kt) * k.H + kh) * k.W + kw, taps, Math.Min(3, k.W - kw));
                }
        });
        var dw = new Span<float>((float*)dweight.Pointer, size);
        new ReadOnlySpan<float>((float*)pb, size).CopyTo(dw);
        for (int b = 1; b < blocks; b++)
            TensorPrimitives.Add(dw, new ReadOnlySpan<float>((float*)pb + (long)b * size, size), dw);
    }

    /// <summary>
    /// Adds to dw[i taps + j] (i &lt; 4 outputs, j &lt; <paramref name="kws"/> consecutive kw) the sum over one output plane of
    /// dy[i] times x shifted by j. A kw past the kernel (kws &lt; 3) reads up to 2 floats past a row and is not stored.
    /// </summary>
    static void SmallChannelFilterBlock(float* x, float* dy, long dyChannel, int rows, int width, int wp, float* dw, int taps, int kws)
    {
        Vector256<float> a00 = default, a01 = default, a02 = default, a10 = default, a11 = default, a12 = default;
        Vector256<float> a20 = default, a21 = default, a22 = default, a30 = default, a31 = default, a32 = default;
        for (int oh = 0; oh < rows; oh++, x += wp, dy += width)
            for (int w = 0; w < width; w += 8)
            {
                var x0 = Vector256.Load(x + w);
                var x1 = Vector256.Load(x + w + 1);
                var x2 = Vector256.Load(x + w + 2);
                var g = Vector256.Load(dy + w);
                a00 = Vector256.FusedMultiplyAdd(g, x0, a00);
                a01 = Vector256.FusedMultiplyAdd(g, x1, a01);
                a02 = Vector256.FusedMultiplyAdd(g, x2, a02);
                g = Vector256.Load(dy + dyChannel + w);
                a10 = Vector256.FusedMultiplyAdd(g, x0, a10);
                a11 = Vector256.FusedMultiplyAdd(g, x1, a11);
                a12 = Vector256.FusedMultiplyAdd(g, x2, a12);
                g = Vector256.Load(dy + 2 * dyChannel + w);
                a20 = Vector256.FusedMultiplyAdd(g, x0, a20);
                a21 = Vector256.FusedMultiplyAdd(g, x1, a21);
                a22 = Vector256.FusedMultiplyAdd(g, x2, a22);
                g = Vector256.Load(dy + 3 * dyChannel + w);
                a30 = Vector256.FusedMultiplyAdd(g, x0, a30);
                a31 = Vector256.FusedMultiplyAdd(g, x1, a31);
                a32 = Vector256.FusedMultiplyAdd(g, x2, a32);
            }
        // accumulators stay in registers: stored one by one (a span over them would keep them in memory in the loop)
        AddLanes(dw, kws, a00, a01, a02);
        AddLanes(dw + taps, kws, a10, a11, a12);
        AddLanes(dw + 2L * taps, kws, a20, a21, a22);
        AddLanes(dw + 3L * taps, kws, a30, a31, a32);
    }

    static void AddLanes(float* dw, int kws, Vector256<float> s0, Vector256<float> s1, Vector256<float> s2)
    {
        dw[0] += Vector256.Sum(s0);
        if (kws > 1) dw[1] += Vector256.Sum(s1);
        if (kws > 2) dw[2] += Vector256.Sum(s2);
    }
}
