using System.Runtime.Intrinsics;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using Sbp.Tensors;

namespace Sbp.Backends.Cpu;

public sealed unsafe partial class CpuBackend
{
    // ---- layer norm: x as [rows, cols] ------------------------------------------------------

    public void LayerNormForward(Tensor x, Tensor? weight, Tensor? bias, float eps, Tensor y, Tensor mean, Tensor rstd)
    {
        if (x.DType.Is16Bit())
        {
            // autocast: a 16-bit x read as its exact widening (the row loops below read Float32)
            using var wide = SixteenBitOperands.Widened(this, x)!;
            LayerNormForward(wide, weight, bias, eps, y, mean, rstd);
            return;
        }
        long rows = mean.Numel;
        int cols = checked((int)(x.Numel / Math.Max(rows, 1)));
        nint px = x.Pointer, py = y.Pointer, pm = mean.Pointer, pr = rstd.Pointer;
        nint pw = weight?.Pointer ?? 0, pb = bias?.Pointer ?? 0;
        var yType = y.DType;   // a 16-bit y: each row computed in a Float32 buffer and rounded into it
        CpuLoops.For(rows, 4L * cols, (s, e) =>
        {
            var buffer = yType.Is16Bit() ? new float[cols] : null;
            fixed (float* row16 = buffer)
            for (long r = s; r < e; r++)
            {
                float* xr = (float*)px + r * cols, yr = row16 != null ? row16 : (float*)py + r * cols;
                double m = CpuMath.Sum(xr, cols) / cols, sq = CpuMath.SumSquaredDeviations(xr, cols, m);
                float fm = (float)m, rs = (float)(1.0 / Math.Sqrt(sq / cols + eps));
                ((float*)pm)[r] = fm;
                ((float*)pr)[r] = rs;
                // y = ((x - mean) * rstd) * w + b, each step rounded (no FMA), in one pass: rows are
                // short (Swin's 24 to 192 channels), so four library calls per row cost more than the math.
                float* w = (float*)pw, b = (float*)pb;
                int j = 0;
                if (Vector256.IsHardwareAccelerated)
                {
                    var vm = Vector256.Create(fm);
                    var vr = Vector256.Create(rs);
                    for (; j + 8 <= cols; j += 8)
                    {
                        var v = (Vector256.Load(xr + j) - vm) * vr;
                        if (w != null) v *= Vector256.Load(w + j);
                        if (b != null) v += Vector256.Load(b + j);
                        v.Store(yr + j);
                    }
                }
                for (; j < cols; j++)
                {
                    float v = (xr[j] - fm) * rs;
                    if (w != null) v *= w[j];
                    if (b != null) v += b[j];
                    yr[j] = v;
                }
                if (row16 != null) HalfPrecision.Narrow(buffer, new Span<ushort>((ushort*)py + r * cols, cols), yType);
            }
        });
    }

    public void LayerNormBackward(Tensor dy, Tensor x, Tensor? weight, Tensor mean, Tensor rstd, Tensor? dx, Tensor? dweight, Tensor? dbias)
    {
        if (x.DType.Is16Bit())
        {
            using var wide = SixteenBitOperands.Widened(this, x)!;
            LayerNormBackward(dy, wide, weight, mean, rstd, dx, dweight, dbias);
            return;
        }
        long rows = mean.Numel;
        if (rows == 0)
        {
            // An empty batch: the column sums are zero (cols cannot be read off the empty x).
            if (dweight is not null) Fill(dweight, 0f);
            if (dbias is not null) Fill(dbias, 0f);
            return;
        }
        int cols = checked((int)(x.Numel / rows));
        nint pg = dy.Pointer, px = x.Pointer, pm = mean.Pointer, pr = rstd.Pointer, pw = weight?.Pointer ?? 0;
        if (dx is not null)
        {
            nint pd = dx.Pointer;
            CpuLoops.For(rows, 8L * cols, (s, e) =>
            {
                for (long r = s; r < e; r++)
                {
                    float* g = (float*)pg + r * cols, xr = (float*)px + r * cols, d = (float*)pd + r * cols, w = (float*)pw;
                    float m = ((float*)pm)[r], rs = ((float*)pr)[r];
                    double sumDn = 0, sumDnXhat = 0;
                    int j0 = 0;
                    if (Vector256.IsHardwareAccelerated)
                    {
                        // The scalar loop's float products, summed in float64 over 4 lanes.
                        Vector256<double> accDn = default, accDnXhat = default;
                        var vm = Vector256.Create(m);
                        var vrs = Vector256.Create(rs);
                        for (; j0 + 8 <= cols; j0 += 8)
                        {
                            var dn = w == null ? Vector256.Load(g + j0) : Vector256.Load(g + j0) * Vector256.Load(w + j0);
                            var xhat = (Vector256.Load(xr + j0) - vm) * vrs;
                            var dnLo = Vector256.WidenLower(dn);
                            var dnHi = Vector256.WidenUpper(dn);
                            accDn += dnLo + dnHi;
                            accDnXhat += dnLo * Vector256.WidenLower(xhat) + dnHi * Vector256.WidenUpper(xhat);
                        }
                        sumDn = Vector256.Sum(accDn);
                        sumDnXhat = Vector256.Sum(accDnXhat);
                    }
                    for (int j = j0; j < cols; j++)
                    {
                        float dn = w == null ? g[j] : g[j] * w[j];
                        sumDn += dn;
                        sumDnXhat += (double)dn * ((xr[j] - m) * rs);
                    }
                    float meanDn = (float)(sumDn / cols), meanDnXhat = (float)(sumDnXhat / cols);
                    int jv = 0;
                    if (Vector256.IsHardwareAccelerated)
                    {
                        var vm = Vector256.Create(m);
                        var vrs = Vector256.Create(rs);
                        var vDn = Vector256.Create(meanDn);
                        var vDnXhat = Vector256.Create(meanDnXhat);
                        for (; jv + 8 <= cols; jv += 8)
                        {
                            var dn = w == null ? Vector256.Load(g + jv) : Vector256.Load(g + jv) * Vector256.Load(w + jv);
                            var xhat = (Vector256.Load(xr + jv) - vm) * vrs;
                            Vector256.Store((dn - vDn - xhat * vDnXhat) * vrs, d + jv);
                        }
                    }
                    for (int j = jv; j < cols; j++)
                    {
                        float dn = w == null ? g[j] : g[j] * w[j];
                        float xhat = (xr[j] - m) * rs;
                        d[j] = (dn - meanDn - xhat * meanDnXhat) * rs;
                    }
                }
            });
        }
        if (dweight is null && dbias is null) return;
        // Column sums: parallel over column blocks, each walking every row (deterministic order).
        nint pdw = dweight?.Pointer ?? 0, pdb = dbias?.Pointer ?? 0;
        const int Block = 16; // column blocks: whole vectors, one block per task at least
        long blocks = (cols + Block - 1) / Block;
        CpuLoops.For(blocks, 4L * Block * rows, (b0, b1) =>
        {
            int s = (int)(b0 * Block), n = (int)Math.Min(cols, b1 * Block) - s;
            var sw = new double[n];
            var sb = new double[n];
            fixed (double* pw = sw, pb = sb)
            {
                for (long r = 0; r < rows; r++)
                {
                    float* g = (float*)pg + r * cols + s, xr = (float*)px + r * cols + s;
                    float m = ((float*)pm)[r], rs = ((float*)pr)[r];
                    int j = 0;
                    if (Vector256.IsHardwareAccelerated)
                    {
                        // Per column the same float64 adds in the same row order as the scalar loop.
                        var vm = Vector256.Create(m);
                        var vrs = Vector256.Create(rs);
                        for (; j + 8 <= n; j += 8)
                        {
                            var gv = Vector256.Load(g + j);
                            var xhat = (Vector256.Load(xr + j) - vm) * vrs;
                            var gLo = Vector256.WidenLower(gv);
                            var gHi = Vector256.WidenUpper(gv);
                            Vector256.Store(Vector256.Load(pb + j) + gLo, pb + j);
                            Vector256.Store(Vector256.Load(pb + j + 4) + gHi, pb + j + 4);
                            Vector256.Store(Vector256.Load(pw + j) + gLo * Vector256.WidenLower(xhat), pw + j);
                            Vector256.Store(Vector256.Load(pw + j + 4) + gHi * Vector256.WidenUpper(xhat), pw + j + 4);
                        }
                    }
                    for (; j < n; j++)
                    {
                        pb[j] += g[j];
                        pw[j] += (double)g[j] * ((xr[j] - m) * rs);
                    }
                }
            }
            for (int j = 0; j < n; j++)
            {
                if (pdw != 0) ((float*)pdw)[s + j] = (float)sw[j];
                if (pdb != 0) ((float*)pdb)[s + j] = (float)sb[j];
            }
        });
    }

    // ---- batch norm: x as [N, C, S] -----------------------------------------------------------

    static (int n, int c, long s) NcsOf(Tensor x) => (x.Shape[0], x.Shape[1], x.Shape.Product(2, x.Rank));

    public void BatchNormTrainForward(Tensor x, Tensor? weight, Tensor? bias, Tensor? runningMean, Tensor? runningVar,
        float momentum, float eps, Tensor y, Tensor saveMean, Tensor saveInvStd)
    {
        var (n, c, s) = NcsOf(x);
        long count = n * s;
        int len = checked((int)s);
        nint px = x.Pointer, py = y.Pointer, pm = saveMean.Pointer, pi = saveInvStd.Pointer;
        nint pw = weight?.Pointer ?? 0, pb = bias?.Pointer ?? 0, prm = runningMean?.Pointer ?? 0, prv = runningVar?.Pointer ?? 0;
        CpuLoops.For(c, 3 * count, (c0, c1) =>
        {
            for (long ch = c0; ch < c1; ch++)
            {
                double sum = 0;
                for (int b = 0; b < n; b++) sum += CpuMath.Sum((float*)px + ((long)b * c + ch) * s, len);
                double mean = sum / count, sq = 0;
                for (int b = 0; b < n; b++) sq += CpuMath.SumSquaredDeviations((float*)px + ((long)b * c + ch) * s, len, mean);
                double var = sq / count;
                float fm = (float)mean, inv = (float)(1.0 / Math.Sqrt(var + eps));
                ((float*)pm)[ch] = fm;
                ((float*)pi)[ch] = inv;
                if (prm != 0) ((float*)prm)[ch] = (float)((1.0 - momentum) * ((float*)prm)[ch] + momentum * mean);
                if (prv != 0)
                {
                    double unbiased = count > 1 ? sq / (count - 1) : double.NaN;
                    ((float*)prv)[ch] = (float)((1.0 - momentum) * ((float*)prv)[ch] + momentum * unbiased);
                }
                float scale = inv * (pw == 0 ? 1f : ((float*)pw)[ch]);
                float shift = pb == 0 ? 0f : ((float*)pb)[ch];
                for (int b = 0; b < n; b++)
                {
                    long o = ((long)b * c + ch) * s;
                    Normalize((float*)px + o, (float*)py + o, len, fm, scale, shift);
                }
            }
        });
    }

    /// <summary>y = (x - mean) * scale + shift, in that order (no fused multiply-add), in one pass.</summary>
    static void Normalize(float* x, float* y, int n, float mean, float scale, float shift)
    {
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            Vector256<float> m = Vector256.Create(mean), k = Vector256.Create(scale), b = Vector256.Create(shift);
            for (; i + 8 <= n; i += 8) Vector256.Store((Vector256.Load(x + i) - m) * k + b, y + i);
        }
        for (; i < n; i++) y[i] = (x[i] - mean) * scale + shift;
    }

    /// <summary>
    /// Channel <paramref name="ch"/>'s sums over the batch of dy and (with <paramref name="withXhat"/>) of dy * (x - mean) * inv, in
    /// float64: dbias and dweight, and the means batch norm's dx needs.
    /// </summary>
    static (double Dy, double DyXhat) ChannelGradSums(nint pg, nint px, int n, int c, long ch, long s, float mean, float inv, bool withXhat)
    {
        int len = checked((int)s);
        double sdy = 0, sdx = 0;
        for (int b = 0; b < n; b++)
        {
            long o = ((long)b * c + ch) * s;
            sdy += CpuMath.Sum((float*)pg + o, len);
            if (withXhat) sdx += CpuMath.DotNormalized((float*)pg + o, (float*)px + o, len, mean, inv);
        }
        return (sdy, sdx);
    }

    /// <summary>Batch norm's dx through the batch statistics: d = k0 * (g - meanDy - (x - mean) * inv * meanDyXhat), in that order.</summary>
    static void BatchNormDx(float* g, float* x, float* d, int n, float k0, float meanDy, float mean, float inv, float meanDyXhat)
    {
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            Vector256<float> vk = Vector256.Create(k0), vdy = Vector256.Create(meanDy), vm = Vector256.Create(mean);
            Vector256<float> vi = Vector256.Create(inv), vh = Vector256.Create(meanDyXhat);
            for (; i + 8 <= n; i += 8)
                Vector256.Store(vk * (Vector256.Load(g + i) - vdy - (Vector256.Load(x + i) - vm) * vi * vh), d + i);
        }
        for (; i < n; i++) d[i] = k0 * (g[i] - meanDy - (x[i] - mean) * inv * meanDyXhat);
    }

    public void BatchNormBackward(Tensor dy, Tensor x, Tensor? weight, Tensor saveMean, Tensor saveInvStd,
        Tensor? dx, Tensor? dweight, Tensor? dbias, float eps)
    {
        var (n, c, s) = NcsOf(x);
        long count = n * s;
        int len = checked((int)s);
        nint pg = dy.Pointer, px = x.Pointer, pm = saveMean.Pointer, pi = saveInvStd.Pointer, pw = weight?.Pointer ?? 0;
        nint pd = dx?.Pointer ?? 0, pdw = dweight?.Pointer ?? 0, pdb = dbias?.Pointer ?? 0;
        CpuLoops.For(c, 4 * count, (c0, c1) =>
        {
            for (long ch = c0; ch < c1; ch++)
            {
                float m = ((float*)pm)[ch], inv = ((float*)pi)[ch];
                var (sdy, sdx) = ChannelGradSums(pg, px, n, c, ch, s, m, inv, withXhat: true);
                if (pdw != 0) ((float*)pdw)[ch] = (float)sdx;
                if (pdb != 0) ((float*)pdb)[ch] = (float)sdy;
                if (pd == 0) continue;
                float w = pw == 0 ? 1f : ((float*)pw)[ch];
                float meanDy = (float)(sdy / count), meanDyXhat = (float)(sdx / count), k0 = w * inv;
                for (int b = 0; b < n; b++)
                {
                    long o = ((long)b * c + ch) * s;
                    BatchNormDx((float*)pg + o, (float*)px + o, (float*)pd + o, len, k0, meanDy, m, inv, meanDyXhat);
                }
            }
        });
    }

    public void BatchNormInferenceForward(Tensor x, Tensor? weight, Tensor? bias, Tensor mean, Tensor invStd, Tensor y)
    {
        var (n, c, s) = NcsOf(x);
        int len = checked((int)s);
        nint px = x.Pointer, py = y.Pointer, pm = mean.Pointer, pi = invStd.Pointer;
        nint pw = weight?.Pointer ?? 0, pb = bias?.Pointer ?? 0;
        CpuLoops.For((long)n * c, len, (r0, r1) =>
        {
            for (long r = r0; r < r1; r++)
            {
                long ch = r % c;
                float scale = ((float*)pi)[ch] * (pw == 0 ? 1f : ((float*)pw)[ch]);
                float shift = pb == 0 ? 0f : ((float*)pb)[ch];
                Normalize((float*)px + r * s, (float*)py + r * s, len, ((float*)pm)[ch], scale, shift);
            }
        });
    }

    public void BatchNormInferenceBackward(Tensor dy, Tensor? x, Tensor? weight, Tensor mean, Tensor invStd,
        Tensor? dx, Tensor? dweight, Tensor? dbias)
    {
        var (n, c, s) = NcsOf(dy);
        int len = checked((int)s);
        nint pg = dy.Pointer, px = x?.Pointer ?? 0, pm = mean.Pointer, pi = invStd.Pointer, pw = weight?.Pointer ?? 0;
        nint pd = dx?.Pointer ?? 0, pdw = dweight?.Pointer ?? 0, pdb = dbias?.Pointer ?? 0;
        if (pdw != 0 && px == 0) throw new ArgumentNullException(nameof(x), "BatchNormInferenceBackward: x is needed for dweight.");
        if (pd != 0)
        {
            CpuLoops.For((long)n * c, len, (r0, r1) =>
            {
                for (long r = r0; r < r1; r++)
                {
                    long ch = r % c;
                    float k0 = ((float*)pi)[ch] * (pw == 0 ? 1f : ((float*)pw)[ch]);
                    TensorPrimitives.Multiply(new ReadOnlySpan<float>((float*)pg + r * s, len), k0, new Span<float>((float*)pd + r * s, len));
                }
            });
        }
        if (pdw == 0 && pdb == 0) return;
        CpuLoops.For(c, 2L * n * s, (c0, c1) =>
        {
            for (long ch = c0; ch < c1; ch++)
            {
                var (sdy, sdx) = ChannelGradSums(pg, px, n, c, ch, s, ((float*)pm)[ch], ((float*)pi)[ch], withXhat: pdw != 0);
                if (pdw != 0) ((float*)pdw)[ch] = (float)sdx;
                if (pdb != 0) ((float*)pdb)[ch] = (float)sdy;
            }
        });
    }
}
