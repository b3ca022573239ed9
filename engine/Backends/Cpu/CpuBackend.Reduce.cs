using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using Sbp.Tensors;

namespace Sbp.Backends.Cpu;

public sealed unsafe partial class CpuBackend
{
    public void ReduceSum(Tensor source, Tensor destination) => Reduce(source, destination, max: false);
    public void ReduceMax(Tensor source, Tensor destination) => Reduce(source, destination, max: true);

    /// <summary>
    /// Axes of src are kept (dst has the same size) or reduced (dst has size 1). After merging
    /// neighbours of the same kind, the kept outer axes index dst in order, so each dst element
    /// (or dst row, when the last axis is kept) is owned by one thread: no write conflicts.
    /// </summary>
    void Reduce(Tensor source, Tensor destination, bool max)
    {
        if (source.Numel == 0)
        {
            Fill(destination, max ? float.NegativeInfinity : 0f);
            return;
        }
        var plan = Geometry.Reduction(source.Shape, destination.Shape);
        var (dims, strides, reduced) = (plan.Dims, plan.Strides, plan.Reduced);
        if (dims.Length == 0)
        {
            Copy(source, destination);
            return;
        }
        int run = dims[^1];
        bool lastReduced = reduced[^1];
        var keptDims = new List<int>();
        var keptStrides = new List<long>();
        var redDims = new List<int>();
        var redStrides = new List<long>();
        for (int i = 0; i < dims.Length - 1; i++)
        {
            (reduced[i] ? redDims : keptDims).Add(dims[i]);
            (reduced[i] ? redStrides : keptStrides).Add(strides[i]);
        }
        long keptCount = keptDims.Aggregate(1L, (p, d) => p * d);
        long redCount = redDims.Aggregate(1L, (p, d) => p * d);
        var kd = keptDims.ToArray(); var ks = keptStrides.ToArray();
        var rd = redDims.ToArray(); var rs = redStrides.ToArray();
        nint ps = source.Pointer, pd = destination.Pointer;
        float init = max ? float.NegativeInfinity : 0f;

        CpuLoops.For(keptCount, redCount * run, (start, end) =>
        {
            for (long k = start; k < end; k++)
            {
                long baseOffset = Offset(k, kd, ks);
                if (lastReduced)
                {
                    float acc = init;
                    for (long r = 0; r < redCount; r++)
                    {
                        var x = new ReadOnlySpan<float>((float*)ps + baseOffset + Offset(r, rd, rs), run);
                        acc = max ? MaxNan(acc, TensorPrimitives.Max(x)) : acc + TensorPrimitives.Sum(x);
                    }
                    ((float*)pd)[k] = acc;
                }
                else
                {
                    var y = new Span<float>((float*)pd + k * run, run);
                    y.Fill(init);
                    for (long r = 0; r < redCount; r++)
                    {
                        var x = new ReadOnlySpan<float>((float*)ps + baseOffset + Offset(r, rd, rs), run);
                        if (max) TensorPrimitives.Max(y, x, y);
                        else TensorPrimitives.Add(y, x, y);
                    }
                }
            }
        });
    }

    static float MaxNan(float a, float b) => float.IsNaN(a) || float.IsNaN(b) ? float.NaN : Math.Max(a, b);

    /// <summary>Element offset of the linear index <paramref name="index"/> over axes dims with strides.</summary>
    static long Offset(long index, int[] dims, long[] strides)
    {
        long off = 0;
        for (int i = dims.Length - 1; i >= 0; i--)
        {
            off += index % dims[i] * strides[i];
            index /= dims[i];
        }
        return off;
    }
}
