using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using Sbp.Tensors;

namespace Sbp.Backends.Cpu;

public sealed unsafe partial class CpuBackend
{
    public void Permute(Tensor source, int[] permutation, Tensor destination)
    {
        var srcStrides = source.Shape.Strides();
        var permuted = new long[permutation.Length];
        for (int i = 0; i < permutation.Length; i++) permuted[i] = srcStrides[permutation[i]];
        var (dims, strides) = Geometry.Collapse(destination.Shape.Dims, permuted, destination.Shape.Strides());
        nint ps = source.Pointer, pd = destination.Pointer;
        int len = dims[^1];
        long step = strides[0][^1];
        long rs = RowStride(strides[0]), rd = RowStride(strides[1]);
        CpuLoops.ForRows(dims, strides, (o, count) =>
        {
            float* x = (float*)ps + o[0];
            float* y = (float*)pd + o[1];
            for (int r = 0; r < count; r++, x += rs, y += rd)
                if (step == 1) new ReadOnlySpan<float>(x, len).CopyTo(new Span<float>(y, len));
                else for (int i = 0; i < len; i++) y[i] = x[i * step];
        });
    }

    /// <summary>An operand's stride between the rows of a <see cref="CpuLoops.ForRows"/> block (0 with a single axis).</summary>
    static long RowStride(long[] strides) => strides.Length > 1 ? strides[^2] : 0;


    public void CopyAlongDim(Tensor source, int sourceStart, Tensor destination, int destinationStart, int dim, int count, bool accumulate)
    {
        var (outer, srcSize, inner) = Geometry.Split(source.Shape, dim);
        int dstSize = destination.Shape[dim];
        nint ps = source.Pointer, pd = destination.Pointer;
        long run = count * inner;
        if (run == 0) return;
        CpuLoops.For(outer, run, (s, e) =>
        {
            for (long o = s; o < e; o++)
            {
                var x = new ReadOnlySpan<float>((float*)ps + (o * srcSize + sourceStart) * inner, (int)run);
                var y = new Span<float>((float*)pd + (o * dstSize + destinationStart) * inner, (int)run);
                if (accumulate) TensorPrimitives.Add(y, x, y);
                else x.CopyTo(y);
            }
        });
    }
}
