using Sbp.Autograd;
using Sbp.Tensors;

namespace Sbp.Stochastic;

/// <summary>
/// Where an SBP region's kept positions sit in one tensor: an axis and the sorted kept indices
/// along it (every index of every other axis is kept). The compact form of a tensor is its gather
/// along <see cref="Axis"/> at <see cref="Kept"/>: the kept elements in flat order. Layouts follow
/// the region dimension through reshapes, permutes and rolls, so a mask over frames becomes, after
/// a window partition, a mask over the tokens of each window (when every window keeps the same
/// offsets; otherwise the reshape is refused).
/// </summary>
public sealed class PositionLayout : IEquatable<PositionLayout>, ICompactForm
{
    readonly int[] _kept;

    public PositionLayout(int axis, int size, IEnumerable<int> kept)
    {
        Axis = axis;
        Size = size;
        _kept = kept.ToArray();
        for (int i = 0; i < _kept.Length; i++)
            if ((uint)_kept[i] >= (uint)size || (i > 0 && _kept[i] <= _kept[i - 1]))
                throw new ArgumentException($"PositionLayout: kept indices must be sorted, distinct and in 0..{size - 1}.");
    }

    /// <summary>The tensor axis that carries the region dimension.</summary>
    public int Axis { get; }

    /// <summary>That axis's full size.</summary>
    public int Size { get; }

    public ReadOnlySpan<int> Kept => _kept;
    public int KeptCount => _kept.Length;
    internal int[] KeptArray => _kept;

    /// <summary>True when every position is kept (the compact form is the tensor itself).</summary>
    public bool KeepsAll => _kept.Length == Size;

    /// <summary>The shape of the compact form of a tensor of <paramref name="full"/> shape.</summary>
    public Shape CompactShape(Shape full)
    {
        if (Axis >= full.Rank || full[Axis] != Size)
            throw new InvalidOperationException($"PositionLayout: axis {Axis} of size {Size} does not fit {full}.");
        return full.With(Axis, _kept.Length);
    }

    /// <summary>The same kept positions on another axis (a permute moved it).</summary>
    public PositionLayout OnAxis(int axis) => axis == Axis ? this : new PositionLayout(axis, Size, _kept);

    /// <summary>
    /// The layout of reshape(x, <paramref name="to"/>) for x of shape <paramref name="from"/> with
    /// this layout, or null when the kept set is not "all of every axis but one" in the new shape.
    /// Kept-ness of a flat index f is K((f / I) mod N), I the product of the axes after Axis; on a new
    /// axis b of size N' with inner product I', f has coordinate (f / I') mod N'. The axis carries the
    /// kept set when kept-ness is a function of that coordinate. Both are constant on runs of
    /// g = gcd(I, I') indices and repeat after lcm(I N, I' N') (or the tensor's end), so one pass over
    /// those runs decides it. The first axis that works has the longest contiguous runs.
    /// </summary>
    public PositionLayout? Reshape(Shape from, Shape to)
    {
        long inner = 1;
        for (int i = Axis + 1; i < from.Rank; i++) inner *= from[i];
        var innerOf = new long[to.Rank];
        long after = 1;
        for (int b = to.Rank - 1; b >= 0; b--)
        {
            innerOf[b] = after;
            after *= to[b];
        }
        for (int b = 0; b < to.Rank; b++)
        {
            long innerB = innerOf[b];
            int n = to[b];
            if (innerB == 0 || n <= 1) continue;
            long g = Gcd(inner, innerB);
            long span = Math.Min(Lcm(inner * Size, innerB * n), from.Numel);
            if (span / g > 1 << 24) continue;
            var keptAt = new bool?[n];
            bool carries = true;
            for (long f = 0; f < span && carries; f += g)
            {
                int c = (int)(f / innerB % n);
                bool k = Contains((int)(f / inner % Size));
                if (keptAt[c] is { } seen) carries = seen == k;
                else keptAt[c] = k;
            }
            if (carries) return new PositionLayout(b, n, Enumerable.Range(0, n).Where(c => keptAt[c] == true));
        }
        return null;
    }

    /// <summary>The layout after rolling the tensor by <paramref name="shift"/> along the layout axis.</summary>
    public PositionLayout Rolled(int shift)
    {
        int s = ((shift % Size) + Size) % Size;
        return new PositionLayout(Axis, Size, _kept.Select(k => (k + s) % Size).Order());
    }

    /// <summary>
    /// How far the compact form rotates when the full tensor rolls by <paramref name="shift"/>:
    /// compact(roll(x, shift)) = roll(compact(x), result) along the axis.
    /// </summary>
    public int CompactRoll(int shift)
    {
        int s = ((shift % Size) + Size) % Size;
        return _kept.Count(k => k + s >= Size);
    }

    public bool Contains(int position) => Array.BinarySearch(_kept, position) >= 0;

    /// <summary>
    /// The smallest p &gt;= 1 with Contains(i) == Contains(i + p) for every i, i + p in 0..Size-1
    /// (Size when the pattern does not repeat): a strided mask's stride.
    /// </summary>
    public int Period()
    {
        for (int p = 1; p < Size; p++)
        {
            bool repeats = true;
            for (int i = 0; i + p < Size && repeats; i++) repeats = Contains(i) == Contains(i + p);
            if (repeats) return p;
        }
        return Math.Max(Size, 1);
    }

    /// <summary>
    /// The layout after padding the axis with <paramref name="before"/> and <paramref name="after"/>
    /// positions. Padded positions are constants whose gradient is discarded, so either choice is exact
    /// for them; they continue the kept pattern with its <see cref="Period"/>, so that a strided mask
    /// stays strided and windows cut from the padded axis keep the same offsets.
    /// </summary>
    public PositionLayout Padded(int before, int after)
    {
        if (before < 0 || after < 0) throw new ArgumentOutOfRangeException(nameof(before), $"PositionLayout.Padded: pads must be non-negative, got {before} and {after}.");
        int p = Period();
        var kept = new List<int>();
        for (int j = -before; j < Size + after; j++)
        {
            int source = j < 0 ? ((j % p) + p) % p : j < Size ? j : Size - p + (j - Size) % p;
            if (Contains(source)) kept.Add(j + before);
        }
        return new PositionLayout(Axis, before + Size + after, kept);
    }

    /// <summary>The layout of positions [<paramref name="start"/>, start + length) of the axis (a crop): the kept ones among them, renumbered from 0.</summary>
    public PositionLayout Sliced(int start, int length)
    {
        if (start < 0 || length < 0 || start + length > Size)
            throw new ArgumentOutOfRangeException(nameof(start), $"PositionLayout.Sliced: [{start}, {start + length}) is outside 0..{Size}.");
        return new PositionLayout(Axis, length, _kept.Where(k => k >= start && k < start + length).Select(k => k - start));
    }

    /// <summary>How many kept positions lie before <paramref name="position"/>: where it starts in the compact form.</summary>
    public int KeptBefore(int position)
    {
        int i = Array.BinarySearch(_kept, position);
        return i >= 0 ? i : ~i;
    }

    static long Gcd(long a, long b)
    {
        while (b != 0) (a, b) = (b, a % b);
        return a;
    }

    static long Lcm(long a, long b) => a / Gcd(a, b) * b;

    /// <summary>dense += compact at the kept positions (the scatter-add kernel, with the tape's index buffer).</summary>
    void ICompactForm.AddInto(Tape tape, Tensor dense, Tensor compact) =>
        dense.Backend.IndexAdd(dense, Axis, RegionLedger.Of(tape).IndexTensor(this, dense.Device), compact);

    /// <summary>The kept positions of <paramref name="full"/> (the gather kernel).</summary>
    Tensor ICompactForm.Gather(Tape tape, Tensor full) => SbpRegion.Gather(tape, full, this);

    public bool Equals(PositionLayout? other) =>
        other is not null && Axis == other.Axis && Size == other.Size && _kept.AsSpan().SequenceEqual(other._kept);

    public override bool Equals(object? obj) => Equals(obj as PositionLayout);

    public override int GetHashCode() => HashCode.Combine(Axis, Size, _kept.Length, _kept.Length > 0 ? _kept[0] : -1);

    public override string ToString() =>
        $"axis {Axis}: {_kept.Length} of {Size} kept [{string.Join(", ", _kept.Take(8))}{(_kept.Length > 8 ? ", ..." : "")}]";
}
