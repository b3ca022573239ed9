using Sbp.Tensors;

namespace Sbp.Backends.Cuda;

// Reductions: two-pass full sums, row and column sums, reduce_f32 for the rest.
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
        var plan = Geometry.Reduction(source.Shape, destination.Shape);
        ReduceRaw(source.Device, P(source), plan.Dims, plan.Reduced, P(destination), max);
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
            LaunchGrid(PtxKernels.SumF32, (uint)blocks, Block, 0, [Ptr(x), Ptr(partials), U32(nRed), F32(1f)]);
            LaunchGrid(PtxKernels.SumF32, 1, Block, 0, [Ptr(partials), Ptr(y), U32(blocks), F32(1f)]);
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
                LaunchRows(PtxKernels.SumRowsF32, nOut, nRed, 0, Ptr(x), Ptr(y), U32(nOut), U32(nRed), F32(1f));
                return;
            }
            if (lastReduced < firstKept)
            {
                Launch(PtxKernels.SumColsF32, nOut, Ptr(x), Ptr(y), U32(nRed), U32(nOut), F32(1f));
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
        Launch(PtxKernels.ReduceF32, nOut, Ptr(x), Ptr(y), U32(nOut), U32(nRed), U32(rank), Ptr(m), U32(max ? 1 : 0));
    }
}
