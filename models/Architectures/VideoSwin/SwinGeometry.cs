using Sbp.Stochastic;

namespace Sbp.Models.Architectures;

/// <summary>
/// The index arithmetic of 3-D shifted windows, all derived from sizes: effective window and
/// shift (Video Swin's get_window_size), the shifted-window attention mask (compute_mask), the
/// relative position index, and the SBP check that every temporal window keeps the same frames count.
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
    /// Swin's relative_position_index for an (effective) window, against a bias table laid out for
    /// <paramref name="table"/> ((2T-1)(2H-1)(2W-1) rows): [N * N], row-major [N, N].
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
    /// The kept frame counts of each temporal window as the block sees them: after rolling by
    /// <paramref name="shiftT"/> (rolled frame j holds frame (j + shift) mod T), windows of
    /// <paramref name="windowT"/> frames. SBP over time needs them all equal.
    /// </summary>
    public static int[] KeptPerWindow(KeepMask mask, int windowT, int shiftT)
    {
        int t = mask.Size;
        if (windowT < 1 || t % windowT != 0)
            throw new ArgumentException($"SwinGeometry.KeptPerWindow: {t} frames do not split into windows of {windowT}.");
        var counts = new int[t / windowT];
        for (int j = 0; j < t; j++)
            if (mask.IsKept((j + shiftT) % t)) counts[j / windowT]++;
        return counts;
    }
}
