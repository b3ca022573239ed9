using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using Sbp.Memory;
using Sbp.Tensors;

namespace Sbp.Backends.Cpu;

// Convolution by vol2col (3-D im2col) + GEMM per group (the packed SGEMM of CpuBackend.Gemm.cs);
// col2vol accumulation for the data gradient. Depthwise convolutions: CpuBackend.ConvDepthwise.cs; non-overlapping
// patches: CpuBackend.ConvPatches.cs; few input taps: CpuBackend.ConvSmallChannel.cs.
public sealed unsafe partial class CpuBackend
{
    /// <summary>
    /// Most bytes of the column (vol2col) workspace of one convolution call: the batch runs in
    /// chunks of samples whose columns fit (always at least one sample). Results do not depend on it.
    /// </summary>
    public long ConvWorkspaceBytes { get; set; } = 16L << 20;

    /// <summary>
    /// Per (sample, group) block: y[n, g] [O/G, P] = W_g [O/G, C/G kvol] @ col[n, g] [C/G kvol, P],
    /// P = oT oH oW. A pointwise kernel uses x itself as the column matrix.
    /// </summary>
    public void ConvForward(in ConvSpec spec, Tensor x, Tensor weight, Tensor y)
    {
        var s = spec;
        if (SixteenBitOperands.Any(x, weight, y))
        {
            // 16-bit operands (autocast): the Float32 convolution on their exact widenings, y rounded once. x is widened whole
            // once: vol2col reads each element once per kernel offset (27 times for 3x3x3), so widening there repeats the work.
            SixteenBitOperands.OnFloat32(this, [x, weight], y, (w, y32) => ConvForward(s, w[0], w[1], y32));
            return;
        }
        long p = s.Output.Volume, kvol = s.Kernel.Volume;
        int cg = s.InPerGroup, og = s.OutPerGroup, groups = s.Groups;
        if (s.Batch == 0 || p == 0 || s.OutChannels == 0) return;
        if (IsDepthwise(s))
        {
            DepthwiseForward(s, x, weight, y);
            return;
        }
        var outBlock = new Operand(y, 0, s.OutChannels * p, og * p);
        if (s.IsPointwise)
        {
            GemmGrid(new GemmSpec(false, false, og, checked((int)p), cg), s.Batch, groups,
                new Operand(weight, 0, 0, (long)og * cg), new Operand(x, 0, s.InChannels * p, cg * p), outBlock);
            return;
        }
        if (IsSmallChannel(s))
        {
            SmallChannelForward(s, x, weight, y);
            return;
        }
        int kg = checked((int)(cg * kvol));
        ForColumnChunks(s, x.Device, (n0, count, col) =>
        {
            Vol2Col(s, x, n0, count, col);
            GemmGrid(new GemmSpec(false, false, og, checked((int)p), kg), count, groups,
                new Operand(weight, 0, 0, (long)og * kg), new Operand(col, 0, s.InChannels * kvol * p, kg * p),
                outBlock with { Offset = n0 * outBlock.PerSample });
        });
    }

    /// <summary>
    /// dcol[n, g] = W_g^T @ dy[n, g], then col2vol adds every column entry back to its input element. A 16-bit dy and
    /// weight of one type are read as they are by the GEMMs (other 16-bit operands widened whole), and dx is rounded to
    /// dy's 16-bit type after (see <see cref="IBackend.ConvBackwardData"/>).
    /// </summary>
    public void ConvBackwardData(in ConvSpec spec, Tensor dy, Tensor weight, Tensor dx)
    {
        bool asIs = dy.DType == weight.DType && !IsDepthwise(spec);   // the GEMMs widen one 16-bit type as they pack
        using var dy32 = asIs ? null : SixteenBitOperands.Widened(this, dy);
        using var w32 = asIs ? null : SixteenBitOperands.Widened(this, weight);
        ConvBackwardDataFloat32(spec, dy32 ?? dy, w32 ?? weight, dx);
        RoundTo(dy.DType, dx);
    }

    void ConvBackwardDataFloat32(in ConvSpec spec, Tensor dy, Tensor weight, Tensor dx)
    {
        var s = spec;
        long p = s.Output.Volume, kvol = s.Kernel.Volume;
        int cg = s.InPerGroup, og = s.OutPerGroup, groups = s.Groups;
        if (s.Batch == 0) return;
        if (p == 0 || s.OutChannels == 0 || s.InChannels == 0)
        {
            Fill(dx, 0f);
            return;
        }
        if (IsDepthwise(s))
        {
            DepthwiseBackwardData(s, dy, weight, dx);
            return;
        }
        var gradBlock = new Operand(dy, 0, s.OutChannels * p, og * p);
        if (s.IsPointwise)
        {
            GemmGrid(new GemmSpec(true, false, cg, checked((int)p), og), s.Batch, groups,
                new Operand(weight, 0, 0, (long)og * cg), gradBlock, new Operand(dx, 0, s.InChannels * p, cg * p));
            return;
        }
        int kg = checked((int)(cg * kvol));
        if (!IsPatchify(s)) Fill(dx, 0f);   // patches: every element of dx is written once
        ForColumnChunks(s, dx.Device, (n0, count, col) =>
        {
            GemmGrid(new GemmSpec(true, false, kg, checked((int)p), og), count, groups,
                new Operand(weight, 0, 0, (long)og * kg), gradBlock with { Offset = n0 * gradBlock.PerSample },
                new Operand(col, 0, s.InChannels * kvol * p, kg * p));
            Col2Vol(s, col, dx, n0, count);
        });
    }

    /// <summary>
    /// dW_g = sum over samples of dy[n, g] [O/G, P] @ col[n, g]^T [P, C/G kvol]. 16-bit x and dy are widened whole (see
    /// ConvForward), and dw is rounded to dy's 16-bit type after (see <see cref="IBackend.ConvBackwardFilter"/>).
    /// </summary>
    public void ConvBackwardFilter(in ConvSpec spec, Tensor x, Tensor dy, Tensor dweight)
    {
        using var x32 = SixteenBitOperands.Widened(this, x);
        using var dy32 = SixteenBitOperands.Widened(this, dy);   // beside Float32 columns: widened once, not rounded per panel
        ConvBackwardFilterFloat32(spec, x32 ?? x, dy32 ?? dy, dweight);
        RoundTo(dy.DType, dweight);
    }

    /// <summary>A Float32 <paramref name="t"/> rounded in place to a 16-bit <paramref name="type"/> (nothing for Float32).</summary>
    void RoundTo(DType type, Tensor t)
    {
        if (!type.Is16Bit()) return;
        nint p = (nint)t.F;
        CpuLoops.For(t.Numel, 1, (a, b) =>
        {
            var span = new Span<float>((float*)p + a, (int)(b - a));
            HalfPrecision.Round(span, span, type);
        });
    }

    void ConvBackwardFilterFloat32(in ConvSpec spec, Tensor x, Tensor dy, Tensor dweight)
    {
        var s = spec;
        long p = s.Output.Volume, kvol = s.Kernel.Volume;
        int cg = s.InPerGroup, og = s.OutPerGroup, groups = s.Groups;
        Fill(dweight, 0f);
        if (s.Batch == 0 || p == 0 || s.OutChannels == 0 || s.InChannels == 0) return;
        if (IsDepthwise(s))
        {
            DepthwiseBackwardFilter(s, x, dy, dweight);
            return;
        }
        if (IsSmallChannelFilter(s))
        {
            SmallChannelBackwardFilter(s, x, dy, dweight);
            return;
        }
        var gradBlock = new Operand(dy, 0, s.OutChannels * p, og * p);
        if (s.IsPointwise)
        {
            GemmGrid(new GemmSpec(false, true, og, cg, checked((int)p), Beta: 1f), s.Batch, groups,
                gradBlock, new Operand(x, 0, s.InChannels * p, cg * p), new Operand(dweight, 0, 0, (long)og * cg));
            return;
        }
        int kg = checked((int)(cg * kvol));
        ForColumnChunks(s, x.Device, (n0, count, col) =>
        {
            Vol2Col(s, x, n0, count, col);
            GemmGrid(new GemmSpec(false, true, og, kg, checked((int)p), Beta: 1f), count, groups,
                gradBlock with { Offset = n0 * gradBlock.PerSample }, new Operand(col, 0, s.InChannels * kvol * p, kg * p),
                new Operand(dweight, 0, 0, (long)og * kg));
        });
    }

    /// <summary>A GEMM operand block: element offset of sample 0 / group 0, and the steps between samples and between groups.</summary>
    readonly record struct Operand(Tensor Tensor, long Offset, long PerSample, long PerGroup);

    /// <summary>
    /// One GEMM (of <paramref name="shape"/>'s M, N, K, transposes and beta) per (sample, group)
    /// block, issued as strided batches: one call per group batched over the samples when that is
    /// the longer batch and C differs per sample, else one call per sample batched over the groups
    /// (C blocks shared by all samples, as the filter gradient's, are accumulated with beta = 1).
    /// </summary>
    void GemmGrid(GemmSpec shape, int samples, int groups, Operand a, Operand b, Operand c)
    {
        if (c.PerSample != 0 && samples > groups)
        {
            for (int g = 0; g < groups; g++)
                Gemm(shape with
                {
                    Batch = samples, StrideA = a.PerSample, StrideB = b.PerSample, StrideC = c.PerSample,
                    OffsetA = a.Offset + g * a.PerGroup, OffsetB = b.Offset + g * b.PerGroup, OffsetC = c.Offset + g * c.PerGroup,
                }, a.Tensor, b.Tensor, c.Tensor);
            return;
        }
        for (int n = 0; n < samples; n++)
            Gemm(shape with
            {
                Batch = groups, StrideA = a.PerGroup, StrideB = b.PerGroup, StrideC = c.PerGroup,
                OffsetA = a.Offset + n * a.PerSample, OffsetB = b.Offset + n * b.PerSample, OffsetC = c.Offset + n * c.PerSample,
            }, a.Tensor, b.Tensor, c.Tensor);
    }

    /// <summary>
    /// Runs body(firstSample, count, col) over the batch in chunks whose column matrices
    /// [count, C kvol, P] fit <see cref="ConvWorkspaceBytes"/>; col is workspace from the pool.
    /// </summary>
    void ForColumnChunks(in ConvSpec spec, Device device, Action<int, int, Tensor> body)
    {
        long rows = spec.InChannels * spec.Kernel.Volume, p = spec.Output.Volume;
        long perSample = rows * p * sizeof(float);
        int chunk = (int)Math.Clamp(ConvWorkspaceBytes / Math.Max(perSample, 1), 1, spec.Batch);
        var col = Tensor.Empty(new Shape(chunk, checked((int)rows), checked((int)p)), device, DType.Float32, MemoryCategory.Workspace);
        col.DetachFromScope();
        try
        {
            for (int n0 = 0; n0 < spec.Batch; n0 += chunk)
                body(n0, Math.Min(chunk, spec.Batch - n0), col);
        }
        finally
        {
            col.Dispose();
        }
    }

    /// <summary>
    /// The outputs o in [lo, hi) of [0, outSize) whose input index o * stride + offset lies in [0, size).
    /// </summary>
    static (int Lo, int Hi) ValidRange(int outSize, int size, int stride, int offset)
    {
        long lo = offset >= 0 ? 0 : (-(long)offset + stride - 1) / stride;
        long hi = size - (long)offset <= 0 ? 0 : (size - (long)offset + stride - 1) / stride;
        lo = Math.Min(lo, outSize);
        hi = Math.Clamp(hi, lo, outSize);
        return ((int)lo, (int)hi);
    }

    /// <summary>
    /// col[n - n0, (c, kt, kh, kw), (ot, oh, ow)] = x[n, c, ot sT - pT + kt dT, oh sH - pH + kh dH, ow sW - pW + kw dW]
    /// (0 outside the input) for samples n0 .. n0 + count - 1. Parallel over the column rows.
    /// </summary>
    static void Vol2Col(ConvSpec s, Tensor x, int n0, int count, Tensor col)
    {
        if (IsPatchify(s))
        {
            PatchesToCol(s, x, n0, count, col);
            return;
        }
        Dim3 inp = s.Input, k = s.Kernel, o = s.Output, st = s.Stride, pd = s.Padding, dl = s.Dilation;
        long inVol = inp.Volume, p = o.Volume, kvol = k.Volume;
        nint px = x.Pointer + (nint)((long)n0 * s.InChannels * inVol * sizeof(float)), pc = col.Pointer;
        long rows = (long)count * s.InChannels * kvol;
        CpuLoops.For(rows, p, (start, end) =>
        {
            for (long r = start; r < end; r++)
            {
                int kw = (int)(r % k.W);
                long q = r / k.W;
                int kh = (int)(q % k.H);
                q /= k.H;
                int kt = (int)(q % k.T);
                long plane = q / k.T;
                float* src = (float*)px + plane * inVol;
                float* dst = (float*)pc + r * p;
                int offW = kw * dl.W - pd.W;
                var (wLo, wHi) = ValidRange(o.W, inp.W, st.W, offW);
                for (int ot = 0; ot < o.T; ot++)
                {
                    int it = ot * st.T - pd.T + kt * dl.T;
                    if ((uint)it >= (uint)inp.T)
                    {
                        new Span<float>(dst, o.H * o.W).Clear();
                        dst += o.H * o.W;
                        continue;
                    }
                    for (int oh = 0; oh < o.H; oh++, dst += o.W)
                    {
                        int ih = oh * st.H - pd.H + kh * dl.H;
                        if ((uint)ih >= (uint)inp.H || wLo == wHi)
                        {
                            new Span<float>(dst, o.W).Clear();
                            continue;
                        }
                        float* row = src + ((long)it * inp.H + ih) * inp.W + offW;
                        new Span<float>(dst, wLo).Clear();
                        new Span<float>(dst + wHi, o.W - wHi).Clear();
                        if (st.W == 1) new ReadOnlySpan<float>(row + wLo, wHi - wLo).CopyTo(new Span<float>(dst + wLo, wHi - wLo));
                        else for (int ow = wLo; ow < wHi; ow++) dst[ow] = row[(long)ow * st.W];
                    }
                }
            }
        });
    }

    /// <summary>
    /// The adjoint of <see cref="Vol2Col"/>: dx[n, c, ...] += every column entry taken from it, for
    /// samples n0 .. n0 + count - 1 (patches: dx = its one entry, <see cref="ColToPatches"/>). Parallel over (sample, channel) planes, which own disjoint rows.
    /// </summary>
    static void Col2Vol(ConvSpec s, Tensor col, Tensor dx, int n0, int count)
    {
        if (IsPatchify(s))
        {
            ColToPatches(s, col, dx, n0, count);
            return;
        }
        Dim3 inp = s.Input, k = s.Kernel, o = s.Output, st = s.Stride, pd = s.Padding, dl = s.Dilation;
        long inVol = inp.Volume, p = o.Volume, kvol = k.Volume;
        nint pdx = dx.Pointer + (nint)((long)n0 * s.InChannels * inVol * sizeof(float)), pc = col.Pointer;
        long planes = (long)count * s.InChannels;
        CpuLoops.For(planes, kvol * p, (start, end) =>
        {
            for (long plane = start; plane < end; plane++)
            {
                float* dstPlane = (float*)pdx + plane * inVol;
                float* src = (float*)pc + plane * kvol * p;
                for (int kt = 0; kt < k.T; kt++)
                for (int kh = 0; kh < k.H; kh++)
                for (int kw = 0; kw < k.W; kw++)
                {
                    int offW = kw * dl.W - pd.W;
                    var (wLo, wHi) = ValidRange(o.W, inp.W, st.W, offW);
                    for (int ot = 0; ot < o.T; ot++)
                    {
                        int it = ot * st.T - pd.T + kt * dl.T;
                        if ((uint)it >= (uint)inp.T || wLo == wHi)
                        {
                            src += o.H * o.W;
                            continue;
                        }
                        for (int oh = 0; oh < o.H; oh++, src += o.W)
                        {
                            int ih = oh * st.H - pd.H + kh * dl.H;
                            if ((uint)ih >= (uint)inp.H) continue;
                            float* row = dstPlane + ((long)it * inp.H + ih) * inp.W + offW;
                            if (st.W == 1)
                            {
                                var d = new Span<float>(row + wLo, wHi - wLo);
                                TensorPrimitives.Add(d, new ReadOnlySpan<float>(src + wLo, wHi - wLo), d);
                            }
                            else for (int ow = wLo; ow < wHi; ow++) row[(long)ow * st.W] += src[ow];
                        }
                    }
                }
            }
        });
    }
}
