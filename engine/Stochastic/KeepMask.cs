using Sbp.Rng;
using Sbp.Tensors;

namespace Sbp.Stochastic;

/// <summary>
/// The positions along an SBP region's dimension whose gradients are kept in one training step
/// (docs/SBP.md section 2). Immutable: a size and the sorted, distinct kept indices. Positions of
/// a multi-axis grid (frames x height x width) are numbered row-major.
/// </summary>
public sealed class KeepMask : IEquatable<KeepMask>
{
    readonly int[] _kept;
    readonly bool[] _isKept;

    KeepMask(int size, IEnumerable<int> kept)
    {
        Size = size;
        _isKept = new bool[size];
        foreach (var i in kept)
        {
            if ((uint)i >= (uint)size) throw new ArgumentOutOfRangeException(nameof(kept), $"KeepMask: position {i} is outside 0..{size - 1}.");
            _isKept[i] = true;
        }
        _kept = Enumerable.Range(0, size).Where(i => _isKept[i]).ToArray();
    }

    public int Size { get; }
    public int KeptCount => _kept.Length;
    public double KeepRatio => Size == 0 ? 1 : (double)KeptCount / Size;
    public ReadOnlySpan<int> Kept => _kept;
    public bool IsKept(int position) => _isKept[position];

    public static KeepMask FromIndices(int size, IEnumerable<int> kept) => new(size, kept);

    public static KeepMask All(int size) => new(size, Enumerable.Range(0, size));

    /// <summary>Keeps i with i mod stride == offset (the CVPR temporal mask: stride 1/keep, offset stride/2).</summary>
    public static KeepMask Strided(int size, int stride, int offset)
    {
        CheckStride("Strided", stride, offset);
        return new(size, Enumerable.Range(0, size).Where(i => i % stride == offset));
    }

    /// <summary>
    /// Checkerboard family over a 2-D or 3-D grid (dims row-major): keeps a position when the sum of
    /// its coordinates mod stride equals offset; with <paramref name="complement"/>, drops it instead
    /// (the rule for keep ratios above 1/2). Offsets 0..stride-1 partition the grid.
    /// </summary>
    public static KeepMask Grid(int[] dims, int stride, int offset, bool complement = false)
    {
        if (dims.Length is < 2 or > 3) throw new ArgumentException($"KeepMask.Grid: dims must have 2 or 3 axes, got [{string.Join(", ", dims)}].");
        CheckStride("Grid", stride, offset);
        var shape = new Shape(dims);
        var strides = shape.Strides();
        var kept = new List<int>();
        for (int p = 0; p < shape.Numel; p++)
        {
            long sum = 0, rest = p;
            for (int a = 0; a < dims.Length; a++) { sum += rest / strides[a]; rest %= strides[a]; }
            if ((sum % stride == offset) != complement) kept.Add(p);
        }
        return new((int)shape.Numel, kept);
    }

    /// <summary>Exactly <paramref name="count"/> positions drawn without replacement (partial Fisher-Yates).</summary>
    public static KeepMask Random(int size, int count, RandomSource rng)
    {
        if (count < 0 || count > size) throw new ArgumentOutOfRangeException(nameof(count), $"KeepMask.Random: cannot keep {count} of {size} positions.");
        var order = Enumerable.Range(0, size).ToArray();
        var stream = rng.Take(count);
        for (int i = 0; i < count; i++)
        {
            int j = i + (int)(stream.Uniform(i) * (size - i));
            (order[i], order[j]) = (order[j], order[i]);
        }
        return new(size, order.Take(count));
    }

    /// <summary>
    /// The mask of a finer stage whose positions are the children of this (coarser) grid's
    /// positions: a fine position is kept exactly when its parent is. Masks made this way nest.
    /// </summary>
    public KeepMask Upsample(int[] coarseDims, int[] factors)
    {
        if (coarseDims.Length != factors.Length || new Shape(coarseDims).Numel != Size)
            throw new ArgumentException($"KeepMask.Upsample: coarse dims [{string.Join(", ", coarseDims)}] do not describe a mask of {Size} positions (or factors differ in length).");
        var fineDims = coarseDims.Zip(factors, (d, f) => d * f).ToArray();
        var fine = new Shape(fineDims);
        var fineStrides = fine.Strides();
        var coarseStrides = new Shape(coarseDims).Strides();
        var kept = new List<int>();
        for (int p = 0; p < fine.Numel; p++)
        {
            long rest = p, parent = 0;
            for (int a = 0; a < fineDims.Length; a++)
            {
                long coord = rest / fineStrides[a];
                rest %= fineStrides[a];
                parent += coord / factors[a] * coarseStrides[a];
            }
            if (_isKept[parent]) kept.Add(p);
        }
        return new((int)fine.Numel, kept);
    }

    /// <summary>This mask with <paramref name="positions"/> always kept (e.g. a CLS token).</summary>
    public KeepMask WithPinned(params int[] positions) => positions.Length == 0 ? this : new(Size, _kept.Concat(positions));

    public KeepMask Union(KeepMask other)
    {
        CheckSameSize("Union", other);
        return new(Size, _kept.Concat(other._kept));
    }

    public bool Overlaps(KeepMask other)
    {
        CheckSameSize("Overlaps", other);
        return _kept.Any(other.IsKept);
    }

    /// <summary>1 at kept positions, 0 elsewhere.</summary>
    public float[] ToFloatArray() => _isKept.Select(k => k ? 1f : 0f).ToArray();

    /// <summary>The kept positions as a 1-D Int32 tensor (for gather and scatter-add).</summary>
    public Tensor ToIndices(Device? device = null) => Tensor.FromArray(_kept, new Shape(_kept.Length), device);

    static void CheckStride(string kind, int stride, int offset)
    {
        if (stride < 1 || offset < 0 || offset >= stride)
            throw new ArgumentOutOfRangeException(nameof(offset), $"KeepMask.{kind}: need stride >= 1 and 0 <= offset < stride, got stride {stride}, offset {offset}.");
    }

    void CheckSameSize(string op, KeepMask other)
    {
        if (other.Size != Size) throw new ArgumentException($"KeepMask.{op}: masks over {Size} and {other.Size} positions.");
    }

    public bool Equals(KeepMask? other) => other is not null && Size == other.Size && _kept.AsSpan().SequenceEqual(other._kept);
    public override bool Equals(object? obj) => Equals(obj as KeepMask);
    public override int GetHashCode() => HashCode.Combine(Size, _kept.Length, _kept.Length > 0 ? _kept[0] : -1);

    public override string ToString() =>
        $"KeepMask(keep {KeptCount}/{Size}: [{string.Join(", ", _kept.Take(16))}{(KeptCount > 16 ? ", ..." : "")}])";
}
