using Sbp.Tensors;

namespace Sbp.Backends.Cpu;

// Max and average pooling over NCDHW planes; parallel over (sample, channel) planes.
public sealed unsafe partial class CpuBackend
{
    /// <summary>One axis of a window: the input range [Lo, Hi) inside the input and the window's size clipped to the padded input.</summary>
    static (int Lo, int Hi, int Padded) Window(int o, int size, int kernel, int stride, int pad)
    {
        int start = o * stride - pad;
        int paddedEnd = Math.Min(start + kernel, size + pad);
        return (Math.Max(start, 0), Math.Min(start + kernel, size), paddedEnd - start);
    }

    public void PoolForward(in PoolSpec spec, Tensor x, Tensor y, Tensor? indices)
    {
        var s = spec;
        Dim3 inp = s.Input, o = s.Output, k = s.Kernel, st = s.Stride, pd = s.Padding;
        long inVol = inp.Volume, outVol = o.Volume;
        long planes = (long)s.Batch * s.Channels;
        nint px = x.Pointer, py = y.Pointer, pi = s.Mode == PoolMode.Max && indices is not null ? indices.Pointer : 0;
        bool max = s.Mode == PoolMode.Max;
        CpuLoops.For(planes, outVol * k.Volume, (start, end) =>
        {
            for (long plane = start; plane < end; plane++)
            {
                float* xs = (float*)px + plane * inVol;
                float* ys = (float*)py + plane * outVol;
                int* ids = pi == 0 ? null : (int*)pi + plane * outVol;
                long at = 0;
                for (int ot = 0; ot < o.T; ot++)
                {
                    var (t0, t1, tp) = Window(ot, inp.T, k.T, st.T, pd.T);
                    for (int oh = 0; oh < o.H; oh++)
                    {
                        var (h0, h1, hp) = Window(oh, inp.H, k.H, st.H, pd.H);
                        for (int ow = 0; ow < o.W; ow++, at++)
                        {
                            var (w0, w1, wp) = Window(ow, inp.W, k.W, st.W, pd.W);
                            if (max)
                            {
                                // Strictly greater: ties keep the first maximum in window order; NaN wins and stops.
                                int best = (t0 * inp.H + h0) * inp.W + w0;
                                float bestValue = float.NegativeInfinity;
                                for (int t = t0; t < t1; t++)
                                for (int h = h0; h < h1; h++)
                                {
                                    int rowStart = (t * inp.H + h) * inp.W;
                                    for (int w = w0; w < w1; w++)
                                    {
                                        float v = xs[rowStart + w];
                                        if (v > bestValue || float.IsNaN(v))
                                        {
                                            bestValue = v;
                                            best = rowStart + w;
                                            if (float.IsNaN(v)) goto found;
                                        }
                                    }
                                }
                            found:
                                ys[at] = bestValue;
                                if (ids != null) ids[at] = best;
                            }
                            else
                            {
                                float sum = 0f;
                                for (int t = t0; t < t1; t++)
                                for (int h = h0; h < h1; h++)
                                {
                                    float* row = xs + (t * inp.H + h) * inp.W;
                                    for (int w = w0; w < w1; w++) sum += row[w];
                                }
                                int divisor = s.CountIncludePad ? tp * hp * wp : (t1 - t0) * (h1 - h0) * (w1 - w0);
                                ys[at] = divisor > 0 ? sum / divisor : 0f;
                            }
                        }
                    }
                }
            }
        });
    }

    public void PoolBackward(in PoolSpec spec, Tensor dy, Tensor? indices, Tensor dx)
    {
        var s = spec;
        Dim3 inp = s.Input, o = s.Output, k = s.Kernel, st = s.Stride, pd = s.Padding;
        long inVol = inp.Volume, outVol = o.Volume;
        long planes = (long)s.Batch * s.Channels;
        bool max = s.Mode == PoolMode.Max;
        if (max && indices is null)
            throw new ArgumentNullException(nameof(indices), "PoolBackward: max pooling needs the indices saved by PoolForward.");
        nint pg = dy.Pointer, pdx = dx.Pointer, pi = max ? indices!.Pointer : 0;
        CpuLoops.For(planes, max ? outVol + inVol : outVol * k.Volume + inVol, (start, end) =>
        {
            for (long plane = start; plane < end; plane++)
            {
                float* gs = (float*)pg + plane * outVol;
                float* ds = (float*)pdx + plane * inVol;
                new Span<float>(ds, checked((int)inVol)).Clear();
                if (max)
                {
                    int* ids = (int*)pi + plane * outVol;
                    for (long i = 0; i < outVol; i++) ds[ids[i]] += gs[i];
                    continue;
                }
                long at = 0;
                for (int ot = 0; ot < o.T; ot++)
                {
                    var (t0, t1, tp) = Window(ot, inp.T, k.T, st.T, pd.T);
                    for (int oh = 0; oh < o.H; oh++)
                    {
                        var (h0, h1, hp) = Window(oh, inp.H, k.H, st.H, pd.H);
                        for (int ow = 0; ow < o.W; ow++, at++)
                        {
                            var (w0, w1, wp) = Window(ow, inp.W, k.W, st.W, pd.W);
                            int divisor = s.CountIncludePad ? tp * hp * wp : (t1 - t0) * (h1 - h0) * (w1 - w0);
                            if (divisor <= 0) continue;
                            float g = gs[at] / divisor;
                            for (int t = t0; t < t1; t++)
                            for (int h = h0; h < h1; h++)
                            {
                                float* row = ds + (t * inp.H + h) * inp.W;
                                for (int w = w0; w < w1; w++) row[w] += g;
                            }
                        }
                    }
                }
            }
        });
    }
}
