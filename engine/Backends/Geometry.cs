using Sbp.Tensors;

namespace Sbp.Backends;

/// <summary>
/// The shape geometry both backends plan their loops and launches with, in one place: merging axes
/// that every operand walks contiguously, splitting a tensor around an axis, and planning a reduction.
/// </summary>
public static class Geometry
{
    /// <summary>
    /// Merges adjacent axes that every operand walks contiguously (stride[i] == stride[i+1] * dim[i+1],
    /// which includes two broadcast axes) and drops axes of size 1. Returns the new dims and strides.
    /// </summary>
    public static (int[] dims, long[][] strides) Collapse(ReadOnlySpan<int> dims, params long[][] strides)
    {
        var d = new List<int>();
        var s = strides.Select(_ => new List<long>()).ToArray();
        for (int i = 0; i < dims.Length; i++)
        {
            if (dims[i] == 1) continue;
            int last = d.Count - 1;
            bool merge = last >= 0;
            for (int k = 0; k < strides.Length && merge; k++)
                merge = s[k][last] == strides[k][i] * dims[i];
            if (merge)
            {
                d[last] *= dims[i];
                for (int k = 0; k < strides.Length; k++) s[k][last] = strides[k][i];
            }
            else
            {
                d.Add(dims[i]);
                for (int k = 0; k < strides.Length; k++) s[k].Add(strides[k][i]);
            }
        }
        if (d.Count == 0)
        {
            d.Add(1);
            foreach (var list in s) list.Add(1);
        }
        return (d.ToArray(), s.Select(l => l.ToArray()).ToArray());
    }

    /// <summary>A tensor seen around one axis: [Outer, Size, Inner], Outer the product of the axes before it, Inner of those after.</summary>
    public readonly record struct AxisSplit(long Outer, int Size, long Inner);

    /// <summary>Views a tensor of <paramref name="shape"/> as [outer, size along dim, inner].</summary>
    public static AxisSplit Split(Shape shape, int dim) => new(shape.Product(0, dim), shape[dim], shape.Product(dim + 1, shape.Rank));

    /// <summary>
    /// A reduction of a contiguous source to a destination of the same rank whose reduced axes have size
    /// 1: the source's axes without those of size 1, with neighbours of the same kind (kept or reduced)
    /// merged, each with its source stride. The kept axes index the destination in order.
    /// </summary>
    public sealed record ReducePlan(int[] Dims, long[] Strides, bool[] Reduced)
    {
        public long KeptCount => Dims.Where((_, i) => !Reduced[i]).Aggregate(1L, (p, d) => p * d);
        public long ReducedCount => Dims.Where((_, i) => Reduced[i]).Aggregate(1L, (p, d) => p * d);
    }

    /// <summary>The plan of reducing <paramref name="source"/> (contiguous) to <paramref name="destination"/>: see <see cref="ReducePlan"/>.</summary>
    public static ReducePlan Reduction(Shape source, Shape destination)
    {
        var strides = source.Strides();
        var dims = new List<int>();
        var merged = new List<long>();
        var reduced = new List<bool>();
        for (int i = 0; i < source.Rank; i++)
        {
            if (source[i] == 1) continue;
            bool r = destination[i] == 1;
            if (dims.Count > 0 && reduced[^1] == r)
            {
                dims[^1] *= source[i];
                merged[^1] = strides[i];
            }
            else
            {
                dims.Add(source[i]);
                merged.Add(strides[i]);
                reduced.Add(r);
            }
        }
        return new ReducePlan([.. dims], [.. merged], [.. reduced]);
    }
}
