using Sbp.Tensors;

namespace Sbp.Backends.Cuda;

// Reductions, permutes, slices and the SBP gather / scatter-add (kernels/sbp.ptx).
public sealed partial class CudaBackend
{
    public void ReduceSum(Tensor source, Tensor destination) => Reduce(source, destination, max: false);
    public void ReduceMax(Tensor source, Tensor destination) => Reduce(source, destination, max: true);

    void Reduce(Tensor source, Tensor destination, bool max)
    {
        if (source.Numel == 0)
        {
            Fill(destination, max ? float.NegativeInfinity : 0f);
            return;
        }
        var src = source.Shape.Dims.ToArray();
        var reduced = new bool[src.Length];
        for (int i = 0; i < src.Length; i++) reduced[i] = destination.Shape[i] == 1 && src[i] != 1;
        ReduceRaw(source.Device, P(source), src, reduced, P(destination), max);
    }

    /// <summary>
    /// y = sum / max of the contiguous x [dims] over the flagged axes, y holding the kept axes in
    /// order. A full sum runs as two sum_f32 passes (block partials, then one block), a sum over
    /// trailing axes as sum_rows_f32, over leading axes as sum_cols_f32; anything else (and every
    /// max) is reduce_f32, one thread per output.
    /// </summary>
    void ReduceRaw(Device device, ulong x, int[] dims, bool[] reduced, ulong y, bool max)
    {
        var strides = new long[dims.Length];
        long acc = 1;
        for (int i = dims.Length - 1; i >= 0; i--) { strides[i] = acc; acc *= dims[i]; }
        var (oDims, oStrides, rDims, rStrides) = (new List<int>(), new List<long>(), new List<int>(), new List<long>());
        for (int i = 0; i < dims.Length; i++)
        {
            if (dims[i] == 1) continue;
            if (reduced[i]) { rDims.Add(dims[i]); rStrides.Add(strides[i]); }
            else { oDims.Add(dims[i]); oStrides.Add(strides[i]); }
        }
        long nOut = oDims.Aggregate(1L, (p, d) => p * d), nRed = rDims.Aggregate(1L, (p, d) => p * d);
        Count(acc, max ? "ReduceMax" : "ReduceSum");
        if (rDims.Count == 0)
        {
            Api.CopyDeviceToDevice(y, x, acc * 4);
            return;
        }
        if (oDims.Count == 0 && !max)
        {
            int blocks = (int)Math.Clamp((nRed + 4095) / 4096, 1, 256);
            using var partials = Work(device, blocks);
            Api.Launch(Function("sum_f32"), "sum_f32", (uint)blocks, Block, 0, [Ptr(x), Ptr(partials), U32(nRed), F32(1f)]);
            Api.Launch(Function("sum_f32"), "sum_f32", 1, Block, 0, [Ptr(partials), Ptr(y), U32(blocks), F32(1f)]);
            return;
        }
        if (!max)
        {
            // Reduced axes all after the kept ones: a row sum (one block per row, coalesced);
            // all before: a column sum (one thread per column, coalesced across a warp).
            var order = Enumerable.Range(0, dims.Length).Where(i => dims[i] != 1).Select(i => reduced[i]).ToArray();
            int firstReduced = Array.IndexOf(order, true), lastKept = Array.LastIndexOf(order, false);
            int firstKept = Array.IndexOf(order, false), lastReduced = Array.LastIndexOf(order, true);
            if (lastKept < firstReduced)
            {
                LaunchRows("sum_rows_f32", nOut, nRed, 0, Ptr(x), Ptr(y), U32(nOut), U32(nRed), F32(1f));
                return;
            }
            if (lastReduced < firstKept)
            {
                Launch("sum_cols_f32", nOut, Ptr(x), Ptr(y), U32(nRed), U32(nOut), F32(1f));
                return;
            }
        }
        // Pad both lists to one rank (size-1 axes with stride 0 change nothing).
        int rank = Math.Max(Math.Max(oDims.Count, rDims.Count), 1);
        while (oDims.Count < rank) { oDims.Insert(0, 1); oStrides.Insert(0, 0); }
        while (rDims.Count < rank) { rDims.Insert(0, 1); rStrides.Insert(0, 0); }
        var meta = new int[4 * rank];
        for (int i = 0; i < rank; i++)
        {
            meta[i] = oDims[i];
            meta[rank + i] = (int)oStrides[i];
            meta[2 * rank + i] = rDims[i];
            meta[3 * rank + i] = (int)rStrides[i];
        }
        using var m = Meta(device, meta);
        Launch("reduce_f32", nOut, Ptr(x), Ptr(y), U32(nOut), U32(nRed), U32(rank), Ptr(m), U32(max ? 1 : 0));
    }

    public void Permute(Tensor source, int[] permutation, Tensor destination)
    {
        var srcStrides = source.Shape.Strides();
        var xStrides = permutation.Select(p => srcStrides[p]).ToArray();
        var (dims, strides) = Cpu.CpuLoops.Collapse(destination.Shape.Dims, xStrides, destination.Shape.Strides());
        StridedCopy(destination.Device, P(source), P(destination), dims, strides[0], strides[1], accumulate: false, "Permute");
    }

    public void CopyAlongDim(Tensor source, int sourceStart, Tensor destination, int destinationStart, int dim, int count, bool accumulate)
    {
        long inner = source.Shape.Product(dim + 1, source.Rank);
        long outer = source.Shape.Product(0, dim);
        int ns = source.Shape[dim], nd = destination.Shape[dim];
        var (dims, strides) = Cpu.CpuLoops.Collapse(new[] { (int)outer, count, (int)inner },
            [ns * inner, inner, 1], [nd * inner, inner, 1]);
        StridedCopy(destination.Device, P(source, sourceStart * inner), P(destination, destinationStart * inner),
            dims, strides[0], strides[1], accumulate, "CopyAlongDim");
    }

    public void IndexSelect(Tensor source, int dim, Tensor indices, Tensor destination)
    {
        var (outer, inner) = (source.Shape.Product(0, dim), source.Shape.Product(dim + 1, source.Rank));
        long total = Count(destination.Numel, "IndexSelect");
        if (total == 0) return;
        bool x4 = inner % 4 == 0 && (P(source) | P(destination)) % 16 == 0;
        Launch(x4 ? "gather_f32x4" : "gather_f32", x4 ? total / 4 : total,
            Ptr(source), Ptr(indices), Ptr(destination), U32(outer), U32(source.Shape[dim]), U32(indices.Numel), U32(inner));
    }

    /// <summary>The atomic scatter-add: IndexAdd allows repeated indices, which the plain forms do not.</summary>
    public void IndexAdd(Tensor destination, int dim, Tensor indices, Tensor source)
    {
        var (outer, inner) = (destination.Shape.Product(0, dim), destination.Shape.Product(dim + 1, destination.Rank));
        long total = Count(source.Numel, "IndexAdd");
        if (total == 0) return;
        Launch("scatter_add_atomic_f32", total,
            Ptr(source), Ptr(indices), Ptr(destination), U32(outer), U32(destination.Shape[dim]), U32(indices.Numel), U32(inner));
    }
}
