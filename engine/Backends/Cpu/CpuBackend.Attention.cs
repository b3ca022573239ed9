using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using Sbp.Backends.Cpu.Gemm;
using Sbp.Memory;
using Sbp.Tensors;

namespace Sbp.Backends.Cpu;

public sealed unsafe partial class CpuBackend
{
    /// <summary>
    /// Attention's forward one (batch, head) entry at a time, in parallel over entries (each worker with
    /// its GEMM slot of one pool workspace): the scores GEMM writes the entry's probabilities, bias and
    /// mask rows are added to each row just before it is normalized, and the output GEMM runs while the N x M block is still
    /// in cache (the whole-tensor steps pass over the scores five times). Same GEMMs, additions and softmax rows as <see cref="AttentionSteps"/>,
    /// so the same bits. Bias or mask planes that are not whole [N, M] matrices take those steps.
    /// </summary>
    public void AttentionForward(in AttentionSpec spec, Tensor q, Tensor k, Tensor v, Tensor? bias, Tensor? mask, Tensor probs, Tensor output)
    {
        var s = spec;
        if (!WholePlanes(s, bias, false) || !WholePlanes(s, mask, s.WindowMask))
        {
            AttentionSteps.Forward(this, s, q, k, v, bias, mask, probs, output);
            return;
        }
        int n = s.N, m = s.M, d = s.D, dv = s.Dv, plane = n * m;
        var scores = new GemmSpec(false, true, n, m, d, Alpha: s.Scale);
        var values = new GemmSpec(false, false, n, dv, m);
        long gemmSlot = RoundUp16(Math.Max(SgemmDriver.WorkspaceFloats(scores, 1), SgemmDriver.WorkspaceFloats(values, 1)));
        // 16-bit operands (autocast) are widened entry by entry into the worker's slot, and 16-bit probs and output computed
        // there in Float32 and rounded: the Float32 steps on the same values, so the same bits as widening whole tensors first
        var slot = new EntrySlot(gemmSlot);
        long sq = slot.Take(q, (long)n * d), sk = slot.Take(k, (long)m * d), sv = slot.Take(v, (long)m * dv);
        // a 16-bit bias (Swin's [H, N, M], read by every window) is widened once, not once per entry
        using var wideBias = SixteenBitOperands.Widened(this, bias);
        bias = wideBias ?? bias;
        long sp = slot.Take(probs, plane), so = slot.Take(output, (long)n * dv);
        nint pq = q.Pointer, pk = k.Pointer, pv = v.Pointer, pp = probs.Pointer, po = output.Pointer;
        nint pb = bias?.Pointer ?? 0, pm = mask?.Pointer ?? 0;
        DType tq = q.DType, tk = k.DType, tv = v.DType, tp = probs.DType, to = output.DType;
        int[] biasDims = Padded(bias), maskDims = Padded(mask);
        int workers = CpuLoops.Workers(s.Entries, (long)plane * (2L * d + 2L * dv + 16));
        using var workspace = Workspace(OpLabel.Current, probs.Device, workers * slot.Floats);
        nint pw = workspace is null ? 0 : (nint)workspace.F;
        CpuLoops.ForWorkers(s.Entries, workers, (w, e) =>
        {
            float* ws = pw == 0 ? null : (float*)pw + w * slot.Floats;
            int bi = (int)(e / s.H), hi = (int)(e % s.H);
            float* qe = Entry(pq, tq, e * n * d, n * d, ws, sq), ke = Entry(pk, tk, e * m * d, m * d, ws, sk);
            float* p = sp < 0 ? (float*)pp + e * plane : ws + sp;
            SgemmDriver.Run(scores, qe, ke, p, ws, 1);
            long biasOffset = pb == 0 ? 0 : PlaneOffset(biasDims, bi, hi, false) * plane;
            float* maskPlane = pm == 0 ? null : (float*)pm + PlaneOffset(maskDims, bi, hi, s.WindowMask) * plane;
            // row by row: bias and mask are added just before the row's softmax, while it is in L1 (the same
            // additions in the same order as whole planes, so the same bits, without two passes over the plane)
            for (int r = 0; r < n; r++)
            {
                float* row = p + (long)r * m;
                if (pb != 0) AddPlane(row, (float*)pb + biasOffset + (long)r * m, m);
                if (maskPlane != null) AddPlane(row, maskPlane + (long)r * m, m);
                SoftmaxRow(row, row, m);
            }
            if (sp >= 0) Narrow(p, (ushort*)pp + e * plane, plane, tp);
            float* oe = so < 0 ? (float*)po + e * n * dv : ws + so;
            SgemmDriver.Run(values, p, Entry(pv, tv, e * m * dv, m * dv, ws, sv), oe, ws, 1);
            if (so >= 0) Narrow(oe, (ushort*)po + e * n * dv, (long)n * dv, to);
        });
    }

    /// <summary>
    /// Attention's gradients one (batch, head) entry at a time, in parallel over entries: dv, then dP = g v^T
    /// and dS into the worker's slot of one pool workspace (or the entry's block of <paramref name="dScores"/>) while they are in
    /// cache, then dq and dk from dS. The same GEMMs and softmax-backward rows as <see cref="AttentionSteps.Backward"/>,
    /// so the same bits, without its passes over the two score-sized tensors. 16-bit probs, q, k or v (autocast) are
    /// widened entry by entry into the slot.
    /// </summary>
    public void AttentionBackward(in AttentionSpec spec, Tensor probs, Tensor grad, Tensor? q, Tensor? k, Tensor? v,
        Tensor? dq, Tensor? dk, Tensor? dv, Tensor? dScores)
    {
        var s = spec;
        int n = s.N, m = s.M, d = s.D, dvd = s.Dv, plane = n * m;
        bool scores = dq is not null || dk is not null || dScores is not null;
        var values = new GemmSpec(true, false, m, dvd, n);
        var gradP = new GemmSpec(false, true, n, m, dvd);
        var gradQ = new GemmSpec(false, false, n, d, m, Alpha: s.Scale);
        var gradK = new GemmSpec(true, false, m, d, n, Alpha: s.Scale);
        long gemmSlot = RoundUp16(new[] { values, gradP, gradQ, gradK }.Max(g => SgemmDriver.WorkspaceFloats(g, 1)));
        // Each worker's slot: the GEMMs' workspace, then dP, then dS when dScores does not hold it, then widened 16-bit operands.
        var slot = new EntrySlot(gemmSlot);
        long sdp = scores ? slot.Take(plane) : 0, sds = scores && dScores is null ? slot.Take(plane) : -1;
        long sp = slot.Take(probs, plane), sq = slot.Take(dk is null ? null : q, (long)n * d);
        long sk = slot.Take(dq is null ? null : k, (long)m * d), sv = slot.Take(scores ? v : null, (long)m * dvd);
        nint pp = probs.Pointer, pg = grad.Pointer, pq = q?.Pointer ?? 0, pk = k?.Pointer ?? 0, pv = v?.Pointer ?? 0;
        nint pdq = dq?.Pointer ?? 0, pdk = dk?.Pointer ?? 0, pdv = dv?.Pointer ?? 0, pds = dScores?.Pointer ?? 0;
        DType tp = probs.DType, tq = q?.DType ?? DType.Float32, tk = k?.DType ?? DType.Float32, tv = v?.DType ?? DType.Float32;
        int workers = CpuLoops.Workers(s.Entries, (long)plane * (4L * d + 2L * dvd + 8));
        using var workspace = Workspace(OpLabel.Current, grad.Device, workers * slot.Floats);
        nint pw = workspace is null ? 0 : (nint)workspace.F;
        CpuLoops.ForWorkers(s.Entries, workers, (w, e) =>
        {
            float* ws = pw == 0 ? null : (float*)pw + w * slot.Floats;
            float* p = Entry(pp, tp, e * plane, plane, ws, sp), g = (float*)pg + e * n * dvd;
            if (pdv != 0) SgemmDriver.Run(values, p, g, (float*)pdv + e * m * dvd, ws, 1);
            if (!scores) return;
            float* dp = ws + sdp, ds = pds != 0 ? (float*)pds + e * plane : ws + sds;
            SgemmDriver.Run(gradP, g, Entry(pv, tv, e * m * dvd, m * dvd, ws, sv), dp, ws, 1);
            for (int r = 0; r < n; r++) SoftmaxBackwardRow(p + (long)r * m, dp + (long)r * m, ds + (long)r * m, m);
            if (pdq != 0) SgemmDriver.Run(gradQ, ds, Entry(pk, tk, e * m * d, m * d, ws, sk), (float*)pdq + e * n * d, ws, 1);
            if (pdk != 0) SgemmDriver.Run(gradK, ds, Entry(pq, tq, e * n * d, n * d, ws, sq), (float*)pdk + e * m * d, ws, 1);
        });
    }

    /// <summary>
    /// A worker's slot of an attention workspace: the GEMMs' packing space first, then regions taken for score planes and
    /// for widened 16-bit operands (a Float32 operand takes none: -1).
    /// </summary>
    sealed class EntrySlot(long gemmFloats)
    {
        public long Floats { get; private set; } = gemmFloats;

        public long Take(long floats)
        {
            long at = Floats;
            Floats += RoundUp16(floats);
            return at;
        }

        public long Take(Tensor? t, long floats) => t is not null && t.DType.Is16Bit() ? Take(floats) : -1;
    }

    /// <summary>
    /// count floats of an operand from element <paramref name="offset"/>: in place for Float32 (slot offset -1), or widened
    /// from 16 bits into the slot region at <paramref name="at"/>.
    /// </summary>
    static float* Entry(nint data, DType type, long offset, long count, float* slot, long at)
    {
        if (at < 0) return (float*)data + offset;
        HalfPrecision.Widen(new ReadOnlySpan<ushort>((ushort*)data + offset, checked((int)count)), new Span<float>(slot + at, (int)count), type);
        return slot + at;
    }

    static void Narrow(float* from, ushort* to, long count, DType type) =>
        HalfPrecision.Narrow(new ReadOnlySpan<float>(from, checked((int)count)), new Span<ushort>(to, (int)count), type);

    static long RoundUp16(long floats) => (floats + 15) / 16 * 16;

    /// <summary>Whether t is absent or its last two axes are the whole [N, M] score plane (then entries index planes).</summary>
    static bool WholePlanes(in AttentionSpec s, Tensor? t, bool window)
    {
        if (t is null) return true;
        if (window) return t.Rank == 4 && t.Shape[2] == s.N && t.Shape[3] == s.M;
        return t.Rank >= 2 && t.Shape[-2] == s.N && t.Shape[-1] == s.M;
    }

    /// <summary>t's shape as [d0, d1, N, M] (leading 1s added); empty for no tensor.</summary>
    static int[] Padded(Tensor? t)
    {
        if (t is null) return [];
        var dims = new int[4];
        for (int i = 0; i < 4; i++) dims[i] = i < 4 - t.Rank ? 1 : t.Shape[i - (4 - t.Rank)];
        return dims;
    }

    /// <summary>
    /// The plane of a [d0, d1, N, M] bias or mask that entry (bi, hi) reads: broadcast axes of size 1, or,
    /// for a window mask [G, h, N, M], plane bi mod G.
    /// </summary>
    static long PlaneOffset(int[] dims, int bi, int hi, bool window)
    {
        int outer = window ? bi % dims[0] : dims[0] == 1 ? 0 : bi;
        return (long)outer * dims[1] + (dims[1] == 1 ? 0 : hi);
    }

    static void AddPlane(float* p, float* plane, int count) =>
        TensorPrimitives.Add(new ReadOnlySpan<float>(p, count), new ReadOnlySpan<float>(plane, count), new Span<float>(p, count));
}
