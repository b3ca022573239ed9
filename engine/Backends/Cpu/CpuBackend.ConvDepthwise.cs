using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using Sbp.Tensors;

namespace Sbp.Backends.Cpu;

// Depthwise convolution (one input channel per group, any number of outputs per group) by direct
// loops: as GEMMs it would be one [O/G, kvol] x [kvol, P] product per group, too thin to pay for
// the column matrix. Every kernel tap is a row-by-row multiply-add of shifted input rows
// (vectorized when the W stride is 1); each task owns its output plane or weight row, and sums run
// in a fixed order, so results do not depend on the thread count.
public sealed unsafe partial class CpuBackend
{
    /// <summary>Tests turn this off to compare the depthwise kernels with the GEMM path.</summary>
    internal static bool UseDepthwiseKernels { get; set; } = true;

    static bool IsDepthwise(in ConvSpec s) => UseDepthwiseKernels && s.InPerGroup == 1 && s.Groups > 1;

    /// <summary>
    /// The rows of one tap: for every output row (ot, oh) whose input row exists, its index in the
    /// output plane and the input row's index in the input plane; returns how many (at most oT oH).
    /// </summary>
    static int TapRows(in ConvSpec s, int kt, int kh, long* outRows, long* inRows)
    {
        Dim3 inp = s.Input, o = s.Output, st = s.Stride, pd = s.Padding, dl = s.Dilation;
        int count = 0;
        for (int ot = 0; ot < o.T; ot++)
        {
            int it = ot * st.T - pd.T + kt * dl.T;
            if ((uint)it >= (uint)inp.T) continue;
            for (int oh = 0; oh < o.H; oh++)
            {
                int ih = oh * st.H - pd.H + kh * dl.H;
                if ((uint)ih >= (uint)inp.H) continue;
                outRows[count] = (long)ot * o.H + oh;
                inRows[count++] = (long)it * inp.H + ih;
            }
        }
        return count;
    }

    /// <summary>y[j] += a * x[j * step] for j in [0, n) (unfused, so every ISA agrees).</summary>
    static void Axpy(float* x, int step, float a, float* y, int n)
    {
        int j = 0;
        if (step == 1 && Vector256.IsHardwareAccelerated)
        {
            var va = Vector256.Create(a);
            for (; j + 8 <= n; j += 8) Vector256.Store(Vector256.Load(y + j) + va * Vector256.Load(x + j), y + j);
        }
        for (; j < n; j++) y[j] += a * x[(long)j * step];
    }

    /// <summary>y[j * step] += a * x[j] for j in [0, n).</summary>
    static void AxpyScatter(float* x, float a, float* y, int step, int n)
    {
        if (step == 1)
        {
            Axpy(x, 1, a, y, n);
            return;
        }
        for (int j = 0; j < n; j++) y[(long)j * step] += a * x[j];
    }

    /// <summary>sum of x[j] * y[j * step] for j in [0, n), in a fixed order.</summary>
    static float Dot(float* x, float* y, int step, int n)
    {
        int j = 0;
        float sum = 0f;
        if (step == 1 && Vector256.IsHardwareAccelerated && n >= 8)
        {
            var acc = Vector256<float>.Zero;
            for (; j + 8 <= n; j += 8) acc += Vector256.Load(x + j) * Vector256.Load(y + j);
            sum = Vector256.Sum(acc);
        }
        for (; j < n; j++) sum += x[j] * y[(long)j * step];
        return sum;
    }

    /// <summary>Length of the row lists <see cref="TapRows"/> fills.</summary>
    static long RowsBuffer(in ConvSpec s) => Math.Max(1L, (long)s.Output.T * s.Output.H);

    /// <summary>y[n, o] = sum over taps of w[o, tap] * shifted x[n, o / (O/G)].</summary>
    static void DepthwiseForward(ConvSpec s, Tensor x, Tensor weight, Tensor y)
    {
        Dim3 k = s.Kernel;
        long p = s.Output.Volume, inVol = s.Input.Volume, kvol = k.Volume;
        int og = s.OutPerGroup, outW = s.Output.W, inW = s.Input.W, sw = s.Stride.W;
        long rowsLen = RowsBuffer(s);
        nint px = x.Pointer, pw = weight.Pointer, py = y.Pointer;
        CpuLoops.For((long)s.Batch * s.OutChannels, kvol * p, (start, end) =>
        {
            long[] rowBuffer = GC.AllocateUninitializedArray<long>(checked((int)(2 * rowsLen)), pinned: true);
            long* outRows = (long*)Unsafe.AsPointer(ref rowBuffer[0]), inRows = outRows + rowsLen;
            for (long plane = start; plane < end; plane++)
            {
                long n = plane / s.OutChannels, oc = plane % s.OutChannels;
                float* yp = (float*)py + plane * p;
                float* xp = (float*)px + (n * s.InChannels + oc / og) * inVol;
                float* wp = (float*)pw + oc * kvol;
                new Span<float>(yp, checked((int)p)).Clear();
                int tap = 0;
                for (int kt = 0; kt < k.T; kt++)
                for (int kh = 0; kh < k.H; kh++)
                {
                    int rows = TapRows(s, kt, kh, outRows, inRows);
                    for (int kw = 0; kw < k.W; kw++, tap++)
                    {
                        int offW = kw * s.Dilation.W - s.Padding.W;
                        var (wLo, wHi) = ValidRange(outW, inW, sw, offW);
                        if (wLo == wHi) continue;
                        float wv = wp[tap];
                        for (int r = 0; r < rows; r++)
                            Axpy(xp + inRows[r] * inW + offW + (long)wLo * sw, sw, wv, yp + outRows[r] * outW + wLo, wHi - wLo);
                    }
                }
            }
            GC.KeepAlive(rowBuffer); // the pointers above point into it
        });
    }

    /// <summary>dx[n, c] = sum over the outputs o of group c and taps of w[o, tap] * dy[n, o] put back at the tap's input positions.</summary>
    static void DepthwiseBackwardData(ConvSpec s, Tensor dy, Tensor weight, Tensor dx)
    {
        Dim3 k = s.Kernel;
        long p = s.Output.Volume, inVol = s.Input.Volume, kvol = k.Volume;
        int og = s.OutPerGroup, outW = s.Output.W, inW = s.Input.W, sw = s.Stride.W;
        long rowsLen = RowsBuffer(s);
        nint pg = dy.Pointer, pw = weight.Pointer, pd = dx.Pointer;
        CpuLoops.For((long)s.Batch * s.InChannels, og * kvol * p, (start, end) =>
        {
            long[] rowBuffer = GC.AllocateUninitializedArray<long>(checked((int)(2 * rowsLen)), pinned: true);
            long* outRows = (long*)Unsafe.AsPointer(ref rowBuffer[0]), inRows = outRows + rowsLen;
            for (long plane = start; plane < end; plane++)
            {
                long n = plane / s.InChannels, c = plane % s.InChannels;
                float* dxp = (float*)pd + plane * inVol;
                new Span<float>(dxp, checked((int)inVol)).Clear();
                for (long oc = c * og; oc < (c + 1) * og; oc++)
                {
                    float* gp = (float*)pg + (n * s.OutChannels + oc) * p;
                    float* wp = (float*)pw + oc * kvol;
                    int tap = 0;
                    for (int kt = 0; kt < k.T; kt++)
                    for (int kh = 0; kh < k.H; kh++)
                    {
                        int rows = TapRows(s, kt, kh, outRows, inRows);
                        for (int kw = 0; kw < k.W; kw++, tap++)
                        {
                            int offW = kw * s.Dilation.W - s.Padding.W;
                            var (wLo, wHi) = ValidRange(outW, inW, sw, offW);
                            if (wLo == wHi) continue;
                            float wv = wp[tap];
                            for (int r = 0; r < rows; r++)
                                AxpyScatter(gp + outRows[r] * outW + wLo, wv, dxp + inRows[r] * inW + offW + (long)wLo * sw, sw, wHi - wLo);
                        }
                    }
                }
            }
            GC.KeepAlive(rowBuffer); // the pointers above point into it
        });
    }

    /// <summary>dw[o, tap] = sum over samples and output positions of dy[n, o] * the tap's x[n, o / (O/G)] (row dots summed in float64).</summary>
    static void DepthwiseBackwardFilter(ConvSpec s, Tensor x, Tensor dy, Tensor dweight)
    {
        Dim3 k = s.Kernel;
        long p = s.Output.Volume, inVol = s.Input.Volume, kvol = k.Volume;
        int og = s.OutPerGroup, outW = s.Output.W, inW = s.Input.W, sw = s.Stride.W;
        long rowsLen = RowsBuffer(s);
        nint px = x.Pointer, pg = dy.Pointer, pd = dweight.Pointer;
        CpuLoops.For(s.OutChannels, s.Batch * kvol * p, (start, end) =>
        {
            long[] rowBuffer = GC.AllocateUninitializedArray<long>(checked((int)(2 * rowsLen)), pinned: true);
            long* outRows = (long*)Unsafe.AsPointer(ref rowBuffer[0]), inRows = outRows + rowsLen;
            for (long oc = start; oc < end; oc++)
            {
                int tap = 0;
                for (int kt = 0; kt < k.T; kt++)
                for (int kh = 0; kh < k.H; kh++)
                {
                    int rows = TapRows(s, kt, kh, outRows, inRows);
                    for (int kw = 0; kw < k.W; kw++, tap++)
                    {
                        int offW = kw * s.Dilation.W - s.Padding.W;
                        var (wLo, wHi) = ValidRange(outW, inW, sw, offW);
                        double sum = 0;
                        for (long n = 0; n < s.Batch && wLo < wHi; n++)
                        {
                            float* gp = (float*)pg + (n * s.OutChannels + oc) * p;
                            float* xp = (float*)px + (n * s.InChannels + oc / og) * inVol;
                            for (int r = 0; r < rows; r++)
                                sum += Dot(gp + outRows[r] * outW + wLo, xp + inRows[r] * inW + offW + (long)wLo * sw, sw, wHi - wLo);
                        }
                        ((float*)pd)[oc * kvol + tap] = (float)sum;
                    }
                }
            }
            GC.KeepAlive(rowBuffer); // the pointers above point into it
        });
    }
}
