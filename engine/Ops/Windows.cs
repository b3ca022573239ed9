using Sbp.Autograd;
using Sbp.Stochastic;
using Sbp.Tensors;

namespace Sbp;

// The shifted-window helpers of (Video) Swin: roll, pad, and 3-D window partition / reverse.
public static partial class Ops
{
    /// <summary>
    /// torch.roll: shifts the elements of x by shifts[i] along dims[i], wrapping around
    /// (y[..., (j + s) mod n, ...] = x[..., j, ...]). Shifts may be negative or larger than the
    /// dimension; a dimension may repeat (its shifts add up). Backward: roll by the opposite shifts.
    /// </summary>
    public static Tensor Roll(Tensor x, int[] shifts, int[] dims)
    {
        const string op = "roll";
        ArgumentNullException.ThrowIfNull(shifts);
        ArgumentNullException.ThrowIfNull(dims);
        // a 16-bit tensor rolled along axes other than its even last one moves Float32 pairs (Swin's shifted windows)
        CheckAlive(op, x, "input");
        bool pairs = MovesPairs(x) && dims.All(d => d >= -x.Rank && d < x.Rank && Shape.NormalizeAxis(d, x.Rank, op) != x.Rank - 1);
        if (!pairs && AutocastWidens(x)) return Widening([x], wide => Roll(wide[0]!, shifts, dims));
        if (!pairs) CheckFloat(op, x);
        if (shifts.Length != dims.Length || dims.Length == 0)
            throw new ArgumentException($"{op}: needs one shift per dimension and at least one of each; got shifts [{string.Join(", ", shifts)}] and dims [{string.Join(", ", dims)}] for {x.Shape}.");
        var forward = new int[x.Rank];
        for (int i = 0; i < dims.Length; i++)
        {
            int d = Shape.NormalizeAxis(dims[i], x.Rank, op);
            int n = x.Shape[d];
            if (n == 0) continue;
            forward[d] = (int)(((long)forward[d] + shifts[i] % n + n) % n);
        }
        var backward = new int[x.Rank];
        for (int d = 0; d < x.Rank; d++) backward[d] = forward[d] == 0 ? 0 : x.Shape[d] - forward[d];
        return Tape.Record(op, RollBy(op, x, forward), [x], [], ctx => [RollBy(op + ".backward", ctx.Grad, backward)],
            SbpRule.Roll(Enumerable.Range(0, x.Rank).ToArray(), forward, (_, compactShifts) => ctx =>
            {
                // Inside an SBP region the compact gradient rolls back by the compact shift along the region axis.
                var back = new int[compactShifts.Length];
                for (int d = 0; d < back.Length; d++)
                {
                    int n = ctx.Grad.Shape[d], s = n == 0 ? 0 : compactShifts[d] % n;
                    back[d] = s == 0 ? 0 : n - s;
                }
                return [RollBy(op + ".backward", ctx.Grad, back)];
            }));
    }

    /// <summary>A new tensor: x rolled by shifts[d] (already in [0, size)) along each axis d, one pass per shifted axis.</summary>
    static Tensor RollBy(string op, Tensor x, int[] shifts)
    {
        Tensor current = x;
        for (int d = 0; d < shifts.Length; d++)
        {
            int s = shifts[d];
            if (s == 0) continue;
            int n = x.Shape[d];
            var y = NewOfType(op, x.Shape, x);
            // y[s : n] = current[0 : n - s]; y[0 : s] = current[n - s : n].
            CopyAlong(current, 0, y, s, d, n - s);
            CopyAlong(current, n - s, y, 0, d, s);
            if (!ReferenceEquals(current, x)) current.Dispose();
            current = y;
        }
        return CopyIfSame(op, current, x);
    }

    /// <summary>The backend's CopyAlongDim (d not the last axis for a 16-bit tensor, which moves Float32 pairs).</summary>
    static void CopyAlong(Tensor from, int fromStart, Tensor to, int toStart, int d, int count)
    {
        using var a = from.DType.Is16Bit() ? from.AsFloatPairs() : null;
        using var b = to.DType.Is16Bit() ? to.AsFloatPairs() : null;
        to.Backend.CopyAlongDim(a ?? from, fromStart, b ?? to, toStart, d, count, accumulate: false);
    }

    /// <summary>
    /// Constant padding as torch.nn.functional.pad: <paramref name="pads"/> holds (before, after)
    /// pairs starting from the LAST dimension: [last_before, last_after, second_last_before, ...].
    /// Pads must be non-negative (use Slice to crop). Backward: the gradient sliced back.
    /// </summary>
    public static Tensor Pad(Tensor x, int[] pads, float value = 0f)
    {
        const string op = "pad";
        ArgumentNullException.ThrowIfNull(pads);
        // a 16-bit tensor padded along axes other than its even last one moves Float32 pairs (value rounded to its type)
        CheckAlive(op, x, "input");
        bool pairs = MovesPairs(x) && (pads.Length < 2 || (pads[0] == 0 && pads[1] == 0));
        if (!pairs && AutocastWidens(x)) return Widening([x], wide => Pad(wide[0]!, pads, value));
        if (!pairs) CheckFloat(op, x);
        if (pads.Length % 2 != 0 || pads.Length > 2 * x.Rank)
            throw new ArgumentException($"{op}: pads [{string.Join(", ", pads)}] must be (before, after) pairs for at most the {x.Rank} dimensions of {x.Shape}, last dimension first.");
        if (pads.Any(p => p < 0))
            throw new ArgumentException($"{op}: pads [{string.Join(", ", pads)}] must be non-negative; crop with Ops.Slice instead.");
        var before = new int[x.Rank];
        var after = new int[x.Rank];
        for (int j = 0; j < pads.Length / 2; j++)
        {
            before[x.Rank - 1 - j] = pads[2 * j];
            after[x.Rank - 1 - j] = pads[2 * j + 1];
        }
        return Tape.Record(op, PadBy(op, x, before, after, value), [x], [], ctx => [CropBy(op + ".backward", ctx.Grad, before, ctx.InputShape(0))],
            SbpRule.Pad(before, after, (axis, compactBefore) =>
            {
                // Inside an SBP region the compact gradient starts with the kept padded positions in front.
                var at = (int[])before.Clone();
                at[axis] = compactBefore;
                return ctx => [CropBy(op + ".backward", ctx.Grad, at, ctx.InputShape(0))];
            }));
    }

    /// <summary>x padded along each axis in turn (one fill and one copy per padded axis).</summary>
    static Tensor PadBy(string op, Tensor x, int[] before, int[] after, float value)
    {
        Tensor current = x;
        for (int d = 0; d < x.Rank; d++)
        {
            if (before[d] == 0 && after[d] == 0) continue;
            int n = current.Shape[d];
            var y = NewOfType(op, current.Shape.With(d, before[d] + n + after[d]), x);
            Fill(y, value);
            CopyAlong(current, 0, y, before[d], d, n);
            if (!ReferenceEquals(current, x)) current.Dispose();
            current = y;
        }
        return CopyIfSame(op, current, x);
    }

    /// <summary>Every element of t set to value (a 16-bit t: value rounded to its type, written as Float32 pairs of it).</summary>
    static void Fill(Tensor t, float value)
    {
        if (!t.DType.Is16Bit())
        {
            t.Backend.Fill(t, value);
            return;
        }
        uint bits = t.DType == DType.BFloat16 ? HalfPrecision.ToBFloat16(value) : HalfPrecision.ToFloat16(value);
        using var pairs = t.AsFloatPairs();
        t.Backend.Fill(pairs, BitConverter.UInt32BitsToSingle(bits | bits << 16));
    }

    /// <summary>The inverse of PadBy: the window of <paramref name="shape"/> starting at <paramref name="before"/>.</summary>
    static Tensor CropBy(string op, Tensor g, int[] before, Shape shape)
    {
        Tensor current = g;
        for (int d = 0; d < g.Rank; d++)
        {
            if (current.Shape[d] == shape[d]) continue;
            var y = New(op, current.Shape.With(d, shape[d]), g);
            y.Backend.CopyAlongDim(current, before[d], y, 0, d, shape[d], accumulate: false);
            if (!ReferenceEquals(current, g)) current.Dispose();
            current = y;
        }
        return current;
    }

    /// <summary>
    /// Video Swin's window_partition: x [B, T, H, W, C] cut into non-overlapping windows of
    /// (wt, wh, ww) -> [B * nW, wt * wh * ww, C], windows ordered (b, t, h, w) with w fastest and
    /// tokens inside a window ordered (t, h, w). T, H, W must be multiples of the window (pad
    /// first with Ops.Pad). A reshape, a permute (one copy) and a reshape; backward is their adjoint.
    /// </summary>
    public static Tensor WindowPartition3d(Tensor x, (int T, int H, int W) window)
    {
        const string op = "window_partition3d";
        CheckWindowed(op, x);
        if (x.Rank != 5)
            throw new ShapeMismatchException($"{op}: input {x.Shape} must be [B, T, H, W, C] (rank 5).");
        int b = x.Shape[0], t = x.Shape[1], h = x.Shape[2], w = x.Shape[3], c = x.Shape[4];
        CheckWindow(op, window, t, h, w, $"input {x.Shape}");
        var (wt, wh, ww) = window;
        using var split = Reshape(x, b, t / wt, wt, h / wh, wh, w / ww, ww, c);
        using var permuted = Permute(split, 0, 1, 3, 5, 2, 4, 6, 7);
        return Reshape(permuted, b * (t / wt) * (h / wh) * (w / ww), wt * wh * ww, c);
    }

    /// <summary>
    /// Video Swin's window_reverse: the inverse of <see cref="WindowPartition3d"/>, windows
    /// [B * nW, wt * wh * ww, C] back to [B, T, H, W, C] for the given batch and (padded) sizes.
    /// </summary>
    public static Tensor WindowReverse3d(Tensor windows, (int T, int H, int W) window, int batch, int t, int h, int w)
    {
        const string op = "window_reverse3d";
        CheckWindowed(op, windows);
        if (batch <= 0) throw new ArgumentOutOfRangeException(nameof(batch), $"{op}: batch must be positive, got {batch}.");
        CheckWindow(op, window, t, h, w, $"target [B={batch}, T={t}, H={h}, W={w}]");
        var (wt, wh, ww) = window;
        int nw = (t / wt) * (h / wh) * (w / ww);
        if (windows.Rank != 3 || windows.Shape[0] != batch * nw || windows.Shape[1] != wt * wh * ww)
            throw new ShapeMismatchException(
                $"{op}: windows {windows.Shape} must be [B * nW, wt * wh * ww, C] = [{batch * nw}, {wt * wh * ww}, C] " +
                $"for batch {batch}, sizes (T={t}, H={h}, W={w}) and window ({wt}, {wh}, {ww}) ({nw} windows per sample).");
        int c = windows.Shape[2];
        using var split = Reshape(windows, batch, t / wt, h / wh, w / ww, wt, wh, ww, c);
        using var permuted = Permute(split, 0, 1, 4, 2, 5, 3, 6, 7);
        return Reshape(permuted, batch, t, h, w, c);
    }

    /// <summary>Float32, or 16-bit where the permute inside moves it as Float32 pairs (an even C) or autocast widens it.</summary>
    static void CheckWindowed(string op, Tensor x)
    {
        CheckAlive(op, x, "input");
        if (!(x.DType.Is16Bit() && (MovesPairs(x) || Autocast.Type is not null))) CheckFloat(op, x);
    }

    static void CheckWindow(string op, (int T, int H, int W) window, int t, int h, int w, string what)
    {
        var (wt, wh, ww) = window;
        if (wt <= 0 || wh <= 0 || ww <= 0)
            throw new ArgumentOutOfRangeException(nameof(window), $"{op}: window ({wt}, {wh}, {ww}) must be positive in every dimension.");
        if (t % wt != 0 || h % wh != 0 || w % ww != 0)
        {
            int pt = (wt - t % wt) % wt, ph = (wh - h % wh) % wh, pw = (ww - w % ww) % ww;
            throw new ShapeMismatchException(
                $"{op}: {what}: T={t}, H={h}, W={w} must be multiples of the window ({wt}, {wh}, {ww}). " +
                $"Pad first, e.g. Ops.Pad(x, [0, 0, 0, {pw}, 0, {ph}, 0, {pt}]) on [B, T, H, W, C].");
        }
    }

    /// <summary>The result of a per-axis loop that may have done no pass: a fresh copy when it is still x.</summary>
    static Tensor CopyIfSame(string op, Tensor result, Tensor x)
    {
        if (!ReferenceEquals(result, x)) return result;
        var copy = NewOfType(op, x.Shape, x);
        using var from = x.DType.Is16Bit() ? x.AsFloatPairs() : null;   // the copy kernels move floats: 16 bits in pairs
        using var to = x.DType.Is16Bit() ? copy.AsFloatPairs() : null;
        copy.Backend.Copy(from ?? x, to ?? copy);
        return copy;
    }
}
