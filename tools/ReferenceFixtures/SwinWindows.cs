using TorchSharp;
using static TorchSharp.torch;

namespace Sbp.Tools.ReferenceFixtures;

/// <summary>
/// The window helpers of Video Swin (mmaction/models/backbones/swin_transformer.py): get_window_size,
/// window_partition, window_reverse, compute_mask and the relative_position_index buffer, each following the
/// official function line by line (including Python's slice semantics where compute_mask relies on them).
/// </summary>
internal static class SwinWindows
{
    /// <summary>get_window_size: a dimension no larger than the window uses its whole size as window and is not shifted.</summary>
    public static (long[] Window, long[] Shift) GetWindowSize(long[] size, long[] window, long[] shift)
    {
        var w = (long[])window.Clone();
        var s = (long[])shift.Clone();
        for (int i = 0; i < size.Length; i++)
            if (size[i] <= window[i]) { w[i] = size[i]; s[i] = 0; }
        return (w, s);
    }

    /// <summary>(B, D, H, W, C) -> (B*nW, wd*wh*ww, C), windows ordered d-major, tokens ordered d-major inside.</summary>
    public static Tensor WindowPartition(Tensor x, long[] ws)
    {
        long b = x.shape[0], d = x.shape[1], h = x.shape[2], w = x.shape[3], c = x.shape[4];
        return x.view(b, d / ws[0], ws[0], h / ws[1], ws[1], w / ws[2], ws[2], c)
            .permute(0, 1, 3, 5, 2, 4, 6, 7).contiguous().view(-1, ws[0] * ws[1] * ws[2], c);
    }

    /// <summary>Inverse of <see cref="WindowPartition"/>: (B*nW, wd, wh, ww, C) -> (B, D, H, W, C).</summary>
    public static Tensor WindowReverse(Tensor windows, long[] ws, long b, long d, long h, long w) =>
        windows.view(b, d / ws[0], h / ws[1], w / ws[2], ws[0], ws[1], ws[2], -1)
            .permute(0, 1, 4, 2, 5, 3, 6, 7).contiguous().view(b, d, h, w, -1);

    /// <summary>
    /// compute_mask(Dp, Hp, Wp, window, shift): label the padded grid by the 3x3x3 regions the cyclic shift creates,
    /// then -100 between tokens of a window whose labels differ. The official loops use Python slices
    /// slice(-w), slice(-w, -s), slice(-s, None); with s = 0 the last one is slice(0, None), the whole axis,
    /// assigned last, so an unshifted axis adds no regions. That is reproduced here exactly.
    /// </summary>
    public static Tensor ComputeMask(long dp, long hp, long wp, long[] ws, long[] ss, ScalarType dtype)
    {
        var label = new float[dp * hp * wp];
        int cnt = 0;
        foreach (var (d0, d1) in Regions(dp, ws[0], ss[0]))
            foreach (var (h0, h1) in Regions(hp, ws[1], ss[1]))
                foreach (var (w0, w1) in Regions(wp, ws[2], ss[2]))
                {
                    for (long d = d0; d < d1; d++)
                        for (long h = h0; h < h1; h++)
                            for (long w = w0; w < w1; w++)
                                label[(d * hp + h) * wp + w] = cnt;
                    cnt++;
                }
        var imgMask = tensor(label, [1, dp, hp, wp, 1], ScalarType.Float32);
        var maskWindows = WindowPartition(imgMask, ws).squeeze(-1);          // nW, N
        var attnMask = maskWindows.unsqueeze(1) - maskWindows.unsqueeze(2);   // nW, N, N
        attnMask = attnMask.masked_fill(attnMask.ne(0), -100.0).masked_fill(attnMask.eq(0), 0.0);
        return attnMask.to_type(dtype);
    }

    /// <summary>The three Python slices of one axis as [start, stop) ranges.</summary>
    static IEnumerable<(long, long)> Regions(long len, long window, long shift)
    {
        yield return PySlice(null, -window, len);
        yield return PySlice(-window, -shift, len);
        yield return PySlice(-shift, null, len);
    }

    /// <summary>Python slice bounds: negative counts from the end, then clamped to [0, len]; -0 is 0.</summary>
    static (long, long) PySlice(long? start, long? stop, long len)
    {
        static long Norm(long v, long len) => Math.Clamp(v < 0 ? v + len : v, 0, len);
        long s = start is null ? 0 : Norm(start.Value, len);
        long e = stop is null ? len : Norm(stop.Value, len);
        return (s, Math.Max(s, e));
    }

    /// <summary>
    /// relative_position_index as WindowAttention3D builds it from the full configured window: meshgrid of the
    /// coordinates, pairwise differences, shifted to start at 0, mixed radix (2wh-1)(2ww-1), (2ww-1), 1. int64.
    /// </summary>
    public static Tensor RelativePositionIndex(long[] ws)
    {
        var coords = stack(meshgrid([arange(ws[0]), arange(ws[1]), arange(ws[2])], indexing: "ij"));  // 3, wd, wh, ww
        var flat = coords.flatten(1);                                                                   // 3, N
        var rel = (flat.unsqueeze(2) - flat.unsqueeze(1)).permute(1, 2, 0).contiguous();               // N, N, 3
        rel = rel + tensor(new long[] { ws[0] - 1, ws[1] - 1, ws[2] - 1 });
        rel = rel * tensor(new long[] { (2 * ws[1] - 1) * (2 * ws[2] - 1), 2 * ws[2] - 1, 1 });
        return rel.sum(-1).to_type(ScalarType.Int64);
    }

    /// <summary>Checks an index buffer against the closed formula, element by element (throws on a mismatch).</summary>
    public static void CheckRelativePositionIndex(Tensor index, long[] ws, string name)
    {
        long n = ws[0] * ws[1] * ws[2];
        if (index.shape.Length != 2 || index.shape[0] != n || index.shape[1] != n)
            throw new InvalidOperationException($"{name}: shape [{string.Join(",", index.shape)}], expected [{n},{n}]");
        var got = index.to_type(ScalarType.Int64).contiguous().data<long>().ToArray();
        for (long i = 0; i < n; i++)
            for (long j = 0; j < n; j++)
            {
                long di = i / (ws[1] * ws[2]), hi = i / ws[2] % ws[1], wi = i % ws[2];
                long dj = j / (ws[1] * ws[2]), hj = j / ws[2] % ws[1], wj = j % ws[2];
                long expected = (di - dj + ws[0] - 1) * (2 * ws[1] - 1) * (2 * ws[2] - 1)
                    + (hi - hj + ws[1] - 1) * (2 * ws[2] - 1) + (wi - wj + ws[2] - 1);
                if (got[i * n + j] != expected)
                    throw new InvalidOperationException($"{name}[{i},{j}] = {got[i * n + j]}, formula gives {expected}");
            }
    }
}
