using System.Collections;

namespace Sbp.Tensors;

/// <summary>
/// The dimensions of a tensor, row-major. Immutable. Element counts are <c>long</c> because GPU
/// tensors can pass 2^31 elements; single dimensions are <c>int</c>.
/// </summary>
public sealed class Shape : IEquatable<Shape>, IReadOnlyList<int>
{
    readonly int[] _dims;

    public Shape(params int[] dims)
    {
        ArgumentNullException.ThrowIfNull(dims);
        foreach (var d in dims)
            if (d < 0) throw new ArgumentException($"Shape {Format(dims)}: dimensions must be >= 0.");
        _dims = (int[])dims.Clone();
        long n = 1;
        foreach (var d in _dims) n = checked(n * d);
        Numel = n;
    }

    public static Shape Scalar { get; } = new();

    public int Rank => _dims.Length;
    public long Numel { get; }
    public int Count => _dims.Length;
    public int this[int axis] => _dims[NormalizeAxis(axis, Rank, "Shape")];
    public int[] ToArray() => (int[])_dims.Clone();
    public ReadOnlySpan<int> Dims => _dims;

    /// <summary>Row-major strides in elements.</summary>
    public long[] Strides()
    {
        var s = new long[Rank];
        long acc = 1;
        for (int i = Rank - 1; i >= 0; i--) { s[i] = acc; acc *= _dims[i]; }
        return s;
    }

    /// <summary>Product of the dimensions in [from, to).</summary>
    public long Product(int from, int to)
    {
        long p = 1;
        for (int i = from; i < to; i++) p *= _dims[i];
        return p;
    }

    public Shape With(int axis, int size)
    {
        var d = ToArray();
        d[NormalizeAxis(axis, Rank, "Shape.With")] = size;
        return new Shape(d);
    }

    /// <summary>
    /// NumPy broadcasting: align trailing dimensions; each pair must be equal or contain a 1.
    /// </summary>
    public static Shape Broadcast(Shape a, Shape b, string op = "broadcast")
    {
        int rank = Math.Max(a.Rank, b.Rank);
        var d = new int[rank];
        for (int i = 0; i < rank; i++)
        {
            int da = i < rank - a.Rank ? 1 : a._dims[i - (rank - a.Rank)];
            int db = i < rank - b.Rank ? 1 : b._dims[i - (rank - b.Rank)];
            if (da != db && da != 1 && db != 1)
                throw new ShapeMismatchException(
                    $"{op}: shapes {a} and {b} cannot be broadcast: dimension {i} (aligned from the right) is {da} vs {db}; " +
                    "each pair of trailing dimensions must be equal or one of them 1 (reshape or expand one operand).");
            d[i] = da == 1 ? db : da;
        }
        return new Shape(d);
    }

    /// <summary>True when this shape broadcasts to <paramref name="target"/> without changing target.</summary>
    public bool BroadcastsTo(Shape target)
    {
        if (Rank > target.Rank) return false;
        int off = target.Rank - Rank;
        for (int i = 0; i < Rank; i++)
            if (_dims[i] != 1 && _dims[i] != target._dims[i + off]) return false;
        return true;
    }

    /// <summary>Strides of this shape viewed inside <paramref name="target"/>, 0 where broadcast.</summary>
    public long[] BroadcastStrides(Shape target)
    {
        var own = Strides();
        var s = new long[target.Rank];
        int off = target.Rank - Rank;
        for (int i = 0; i < Rank; i++)
            s[i + off] = _dims[i] == 1 ? 0 : own[i];
        return s;
    }

    public static int NormalizeAxis(int axis, int rank, string op)
    {
        int a = axis < 0 ? axis + rank : axis;
        if (a < 0 || a >= rank)
            throw new ArgumentOutOfRangeException(nameof(axis),
                $"{op}: dimension {axis} is out of range for a tensor of rank {rank} (valid: {-rank}..{rank - 1}).");
        return a;
    }

    public bool Equals(Shape? other) => other is not null && _dims.AsSpan().SequenceEqual(other._dims);
    public override bool Equals(object? obj) => Equals(obj as Shape);
    public override int GetHashCode()
    {
        var h = new HashCode();
        foreach (var d in _dims) h.Add(d);
        return h.ToHashCode();
    }
    public static bool operator ==(Shape? a, Shape? b) => a is null ? b is null : a.Equals(b);
    public static bool operator !=(Shape? a, Shape? b) => !(a == b);

    public IEnumerator<int> GetEnumerator() => ((IEnumerable<int>)_dims).GetEnumerator();
    IEnumerator IEnumerable.GetEnumerator() => _dims.GetEnumerator();

    public override string ToString() => Format(_dims);
    static string Format(int[] d) => "[" + string.Join(", ", d) + "]";

    public static implicit operator Shape(int[] dims) => new(dims);
}

/// <summary>Thrown when operand shapes do not fit an op; the message names the op, the shapes and the fix.</summary>
public sealed class ShapeMismatchException(string message) : ArgumentException(message);
