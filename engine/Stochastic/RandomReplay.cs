using Sbp.Tensors;

namespace Sbp.Stochastic;

/// <summary>
/// Random masks of a region that is re-run in backward (recompute, checkpoint). The first forward
/// captures every dropout/drop-path mask (with the layout of the op's input, so it can be cut to
/// the kept slice); the re-run replays them in order instead of drawing new numbers, so the
/// re-run computes exactly what the forward did and no random stream advances twice
/// (docs/SBP.md section 5: random masks must be saved and reused).
/// </summary>
internal sealed class RandomReplay : IDisposable
{
    [ThreadStatic] static RandomReplay? _current;

    readonly RandomReplay? _previous;
    readonly bool _replaying;
    readonly List<(string Op, Tensor Mask, PositionLayout? Layout)> _masks;
    int _next;

    RandomReplay(bool replaying, List<(string, Tensor, PositionLayout?)> masks)
    {
        _previous = _current;
        _replaying = replaying;
        _masks = masks;
        _current = this;
    }

    /// <summary>True while a capture or a replay runs on this thread (a region run inside one must not be run twice).</summary>
    public static bool Active => _current is not null;

    /// <summary>Starts capturing the masks random ops draw on this thread.</summary>
    public static RandomReplay Capture() => new(false, []);

    /// <summary>Makes random ops on this thread take these masks, in order, instead of drawing.</summary>
    public static RandomReplay Replay(IReadOnlyList<(string Op, Tensor Mask)> masks) =>
        new(true, masks.Select(m => (m.Op, m.Mask, (PositionLayout?)null)).ToList());

    /// <summary>Captured masks (views owned by this object until <see cref="Dispose"/>), with the layout of the op's input.</summary>
    public IReadOnlyList<(string Op, Tensor Mask, PositionLayout? Layout)> Masks => _masks;

    /// <summary>
    /// For random ops: true with the mask to use when replaying; otherwise false (draw one, then
    /// call <see cref="Record"/>).
    /// </summary>
    public static bool TryReplay(string op, Shape shape, out Tensor mask)
    {
        mask = null!;
        if (_current is not { _replaying: true } r) return false;
        if (r._next >= r._masks.Count || r._masks[r._next].Op != op || r._masks[r._next].Mask.Shape != shape)
            throw new SbpRegionException(
                $"{op}: the re-run of an SBP region in backward asked for a {op} mask {shape} but the forward drew " +
                (r._next < r._masks.Count ? $"a {r._masks[r._next].Op} mask {r._masks[r._next].Mask.Shape}" : "no more masks") +
                " at this point. A region body must run the same random ops on every call (its control flow may not depend on the step).");
        mask = r._masks[r._next++].Mask;
        return true;
    }

    /// <summary>For random ops that drew <paramref name="mask"/> for <paramref name="input"/>: keeps it when capturing.</summary>
    public static void Record(string op, Tensor mask, Tensor input)
    {
        if (_current is not { _replaying: false } c) return;
        PositionLayout? layout = null;
        if (RegionTrace.Current?.LayoutOf(input) is { } l)
        {
            int axis = l.Axis - (input.Rank - mask.Rank);
            if (axis >= 0 && mask.Shape[axis] == l.Size) layout = l.OnAxis(axis);
        }
        c._masks.Add((op, mask.View(mask.Shape, register: false), layout));
    }

    public void Dispose()
    {
        if (_current == this) _current = _previous;
        if (!_replaying)
            foreach (var m in _masks) m.Mask.Dispose();
        _masks.Clear();
    }
}
