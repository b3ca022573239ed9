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

    /// <summary>
    /// Walks the output positions of one plane in storage order (T, then H, then W), giving each one's input window;
    /// the T and H windows are recomputed only when their coordinate changes. Allocation-free.
    /// </summary>
    struct PoolWindows
    {
        readonly Dim3 inp, o, k, st, pd;
        int ot, oh, ow;
        readonly bool empty;
        public int T0, T1, H0, H1, W0, W1;
        int tp, hp, wp;
        public long At;

        public PoolWindows(in PoolSpec s)
        {
            inp = s.Input; o = s.Output; k = s.Kernel; st = s.Stride; pd = s.Padding;
            ot = 0; oh = 0; ow = -1; At = -1;
            T0 = T1 = H0 = H1 = W0 = W1 = tp = hp = wp = 0;
            empty = o.T <= 0 || o.H <= 0 || o.W <= 0;
            if (empty) return;
            (T0, T1, tp) = Window(0, inp.T, k.T, st.T, pd.T);
            (H0, H1, hp) = Window(0, inp.H, k.H, st.H, pd.H);
        }

        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
        public bool MoveNext()
        {
            if (empty) return false;
            if (++ow >= o.W)
            {
                ow = 0;
                if (++oh >= o.H)
                {
                    oh = 0;
                    if (++ot >= o.T) return false;
                    (T0, T1, tp) = Window(ot, inp.T, k.T, st.T, pd.T);
                }
                (H0, H1, hp) = Window(oh, inp.H, k.H, st.H, pd.H);
            }
            (W0, W1, wp) = Window(ow, inp.W, k.W, st.W, pd.W);
            At++;
            return true;
        }

        /// <summary>Average divisor: the padded window size, or only the part inside the input.</summary>
        public readonly int Divisor(bool includePad) => includePad ? tp * hp * wp : (T1 - T0) * (H1 - H0) * (W1 - W0);
    }

    public void PoolForward(in PoolSpec spec, Tensor x, Tensor y, Tensor? indices)
    {
        var s = spec;
        Dim3 inp = s.Input, o = s.Output, k = s.Kernel;
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
                for (var win = new PoolWindows(s); win.MoveNext();)
                {
                    long at = win.At;
                    int t0 = win.T0, t1 = win.T1, h0 = win.H0, h1 = win.H1, w0 = win.W0, w1 = win.W1;
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
                        int divisor = win.Divisor(s.CountIncludePad);
                        ys[at] = divisor > 0 ? sum / divisor : 0f;
                    }
                }
            }
        });
    }

    public void PoolBackward(in PoolSpec spec, Tensor dy, Tensor? indices, Tensor dx)
    {
        var s = spec;
        Dim3 inp = s.Input, o = s.Output, k = s.Kernel;
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
                for (var win = new PoolWindows(s); win.MoveNext();)
                {
                    long at = win.At;
                    int t0 = win.T0, t1 = win.T1, h0 = win.H0, h1 = win.H1, w0 = win.W0, w1 = win.W1;
                    int divisor = win.Divisor(s.CountIncludePad);
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
        });
    }
}
