using Sbp.Tensors;
using Sbp.Stochastic;

namespace Sbp.Models.Architectures;

/// <summary>
/// The index arithmetic of 3-D shifted windows, all derived from sizes: effective window and
/// shift (Video Swin's get_window_size), the shifted-window attention mask (compute_mask), the
/// relative position index, and the SBP check that every temporal window keeps the same frames.
/// </summary>
public static class SwinGeometry
{
    /// <summary>
    /// Video Swin's get_window_size: along an axis whose size is at most the window, the window
    /// shrinks to the size and that axis is not shifted.
    /// </summary>
    public static ((int T, int H, int W) Window, (int T, int H, int W) Shift) Effective((int T, int H, int W) size, (int T, int H, int W) window, (int T, int H, int W) shift)
    {
        static (int, int) Axis(int n, int w, int s) => n <= w ? (n, 0) : (w, s);
        var (wt, st) = Axis(size.T, window.T, shift.T);
        var (wh, sh) = Axis(size.H, window.H, shift.H);
        var (ww, sw) = Axis(size.W, window.W, shift.W);
        return ((wt, wh, ww), (st, sh, sw));
    }

    /// <summary>How far to pad each axis at its end to reach a multiple of the window.</summary>
    public static (int T, int H, int W) Padding((int T, int H, int W) size, (int T, int H, int W) window) =>
        ((window.T - size.T % window.T) % window.T, (window.H - size.H % window.H) % window.H, (window.W - size.W % window.W) % window.W);

    /// <summary>
    /// compute_mask of Video Swin for the padded sizes: [nW * N * N] (row-major [nW, N, N]) with 0
    /// where query and key come from the same region of the rolled volume and -100 elsewhere.
    /// Windows are ordered as <see cref="Ops.WindowPartition3d"/> orders them.
    /// </summary>
    public static float[] ShiftMask((int T, int H, int W) padded, (int T, int H, int W) window, (int T, int H, int W) shift)
    {
        // Region label per axis: 0 before the last window, 1 in the last window before the shift, 2 in the shifted tail.
        static int Label(int i, int n, int w, int s) => s == 0 ? 0 : i < n - w ? 0 : i < n - s ? 1 : 2;
        var (t, h, w) = padded;
        var (wt, wh, ww) = window;
        int nT = t / wt, nH = h / wh, nW = w / ww, n = wt * wh * ww;
        int windows = nT * nH * nW;
        var labels = new int[windows * n];
        for (int a = 0; a < t; a++)
        for (int b = 0; b < h; b++)
        for (int c = 0; c < w; c++)
        {
            int win = ((a / wt) * nH + b / wh) * nW + c / ww;
            int tok = ((a % wt) * wh + b % wh) * ww + c % ww;
            labels[win * n + tok] = Label(a, t, wt, shift.T) * 9 + Label(b, h, wh, shift.H) * 3 + Label(c, w, ww, shift.W);
        }
        var mask = new float[windows * n * n];
        for (int win = 0; win < windows; win++)
            for (int i = 0; i < n; i++)
                for (int j = 0; j < n; j++)
                    mask[(win * n + i) * n + j] = labels[win * n + i] == labels[win * n + j] ? 0f : -100f;
        return mask;
    }

    /// <summary>
    /// The bias rows an (effective) window reads from a table laid out for <paramref name="table"/>:
    /// <see cref="SwinBiasIndex.TrueOffsets"/> gives each token pair its own offset's row
    /// (the two-argument overload);
    /// <see cref="SwinBiasIndex.Official"/> slices the full window's index, <c>index[:N, :N]</c>, as the official code does.
    /// </summary>
    public static int[] RelativePositionIndex((int T, int H, int W) window, (int T, int H, int W) table, SwinBiasIndex rule)
    {
        if (rule == SwinBiasIndex.TrueOffsets || window == table) return RelativePositionIndex(window, table);
        if (window.T > table.T || window.H > table.H || window.W > table.W)
            throw new ArgumentException($"SwinGeometry.RelativePositionIndex: window {window} is larger than the bias table's window {table}.");
        var full = RelativePositionIndex(table, table);
        int n = window.T * window.H * window.W, nFull = table.T * table.H * table.W;
        var index = new int[n * n];
        for (int i = 0; i < n; i++) Array.Copy(full, i * nFull, index, i * n, n);
        return index;
    }

    /// <summary>
    /// Swin's relative_position_index for an (effective) window, against a bias table laid out for
    /// <paramref name="table"/> ((2T-1)(2H-1)(2W-1) rows): [N * N], row-major [N, N], each pair's true offset.
    /// </summary>
    public static int[] RelativePositionIndex((int T, int H, int W) window, (int T, int H, int W) table)
    {
        var (wt, wh, ww) = window;
        if (wt > table.T || wh > table.H || ww > table.W)
            throw new ArgumentException($"SwinGeometry.RelativePositionIndex: window {window} is larger than the bias table's window {table}.");
        int n = wt * wh * ww;
        var coords = new (int T, int H, int W)[n];
        for (int i = 0; i < n; i++) coords[i] = (i / (wh * ww), i / ww % wh, i % ww);
        int strideT = (2 * table.H - 1) * (2 * table.W - 1), strideH = 2 * table.W - 1;
        var index = new int[n * n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
            {
                var (a, b) = (coords[i], coords[j]);
                index[i * n + j] = (a.T - b.T + table.T - 1) * strideT + (a.H - b.H + table.H - 1) * strideH + (a.W - b.W + table.W - 1);
            }
        return index;
    }

    /// <summary>
    /// Why an SBP region over time cannot run <paramref name="mask"/> in a block on a token grid of
    /// <paramref name="size"/> (null when it can). It applies the region's own layout rules in the
    /// block's order: pad time to whole windows (padded frames continue the mask's pattern), roll by
    /// the shift, cut into windows, which needs the same kept offsets in every temporal window.
    /// </summary>
    public static string? TemporalMaskProblem(KeepMask mask, (int T, int H, int W) size, (int T, int H, int W) window, (int T, int H, int W) shift)
    {
        ArgumentNullException.ThrowIfNull(mask);
        var (win, sh) = Effective(size, window, shift);
        var (pt, ph, pw) = Padding(size, win);
        int tp = size.T + pt, hp = size.H + ph, wp = size.W + pw;
        var layout = new PositionLayout(1, mask.Size, mask.Kept.ToArray()).Padded(0, pt).Rolled(-sh.T);
        var windows = layout.Reshape(new Shape(1, tp, hp, wp, 1), new Shape(1, tp / win.T, win.T, hp / win.H, win.H, wp / win.W, win.W, 1));
        if (windows is not null) return null;
        var strides = Enumerable.Range(1, win.T).Where(s => win.T % s == 0).Select(s => $"{1.0 / s:0.###}");
        string kept = string.Join(", ", mask.Kept.ToArray().Take(12)) + (mask.KeptCount > 12 ? ", ..." : "");
        return $"the keep mask (token frames [{kept}] of {mask.Size}) does not keep the same frames in every temporal window of {win.T} " +
            $"({size.T} token frames{(pt > 0 ? $" padded to {tp}" : "")}{(sh.T > 0 ? $", shifted by {sh.T}" : "")}), so the windows cannot run on compact tensors. " +
            $"Use a keep ratio whose stride divides the window, here keep {string.Join(", ", strides)} (`--keep`), with a strided mask " +
            "(`--mask strided` or `strided-random`; MaskKind.Strided in code)" +
            (size.T <= window.T ? "" : $"; a random mask works only when one window covers all frames (clips of at most {window.T} token frames)") + ".";
    }
}
