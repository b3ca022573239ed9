using Sbp.Tensors;

namespace Sbp.Backends.Cuda;

// Reductions that fill the GPU: two-pass full sums, row sums, two-stage column sums and two-stage general reductions.
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

    /// <summary>Blocks a reduction aims for: a few per SM of the largest GPUs (an H100 has 132), so none idles.</summary>
    const long TargetBlocks = 1024;

    /// <summary>
    /// How reduce_part_f32 splits <paramref name="nRed"/> elements of each of <paramref name="nOut"/> outputs: chunks of at least
    /// 1024 elements, enough of them that nOut x chunks blocks fill the GPU (also the kernel profiler's launch).
    /// </summary>
    internal static (long Chunks, long ChunkLen) ReducePlan(long nOut, long nRed)
    {
        long chunks = Math.Clamp(TargetBlocks / nOut, 1, (nRed + 1023) / 1024);
        long chunkLen = (nRed + chunks - 1) / chunks;
        return ((nRed + chunkLen - 1) / chunkLen, chunkLen);
    }

    /// <summary>How sum_cols_part_f32 splits <paramref name="rows"/>: chunks of at least 64 rows, about <see cref="TargetBlocks"/>
    /// blocks over the column tiles (also the kernel profiler's launch).</summary>
    internal static (long Tiles, long Chunks, long ChunkRows) ColumnSumPlan(long rows, long cols)
    {
        long tiles = (cols + 31) / 32;
        long chunks = Math.Clamp(TargetBlocks / tiles, 1, Math.Max(1, (rows + 63) / 64));
        long chunkRows = (rows + chunks - 1) / chunks;
        return (tiles, (rows + chunkRows - 1) / chunkRows, chunkRows);
    }

    /// <summary>A grid of <paramref name="blocks"/>, capped (the kernels stride over the rest).</summary>
    internal static uint GridOf(long blocks) => (uint)Math.Clamp(blocks, 1, MaxGrid);

    /// <summary>
    /// y = sum / max of the contiguous x [dims] over the flagged axes, y holding the kept axes in
    /// order. Every shape fills the GPU, deterministically (the order depends on the shape only):
    /// a full sum runs as two sum_f32 passes (block partials, then one block); a sum over trailing
    /// axes as sum_rows_f32 (a block per row); over leading axes as sum_cols_part_f32 (blocks over
    /// column tiles x row chunks) then sum_cols_f32 over the chunk partials (few rows: sum_cols_f32
    /// alone); anything else, and every max, as reduce_part_f32 (a block per output and chunk of the
    /// reduced elements) then, with several chunks, reduce_part_f32 over the partials (few elements
    /// per output: reduce_f32, a thread per output).
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
            // all before: a column sum (coalesced across a warp).
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
                ColumnSum(device, x, y, nRed, nOut);
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
        if (nRed < 64)
        {
            Launch(PtxKernels.ReduceF32, nOut, Ptr(x), Ptr(y), U32(nOut), U32(nRed), U32(rank), Meta("Reduce", meta), U32(max ? 1 : 0));
            return;
        }
        var (chunks, chunkLen) = ReducePlan(nOut, nRed);
        var m = Meta("Reduce", meta);
        uint block = (uint)Math.Clamp((chunkLen + 31) / 32 * 32, 32, Block);
        if (chunks == 1)
        {
            LaunchGrid(PtxKernels.ReducePartF32, GridOf(nOut), block, 0,
                [Ptr(x), Ptr(y), U32(nOut), U32(nRed), U32(rank), m, U32(max ? 1 : 0), U32(chunkLen), U32(1)]);
            return;
        }
        using var parts = Work(device, checked((int)(nOut * chunks)));
        LaunchGrid(PtxKernels.ReducePartF32, GridOf(nOut * chunks), block, 0,
            [Ptr(x), Ptr(parts), U32(nOut), U32(nRed), U32(rank), m, U32(max ? 1 : 0), U32(chunkLen), U32(chunks)]);
        LaunchGrid(PtxKernels.ReducePartF32, GridOf(nOut), (uint)Math.Clamp((chunks + 31) / 32 * 32, 32, Block), 0,
            [Ptr(parts), Ptr(y), U32(nOut), U32(chunks), U32(1), Meta("Reduce", (int)nOut, (int)chunks, (int)chunks, 1), U32(max ? 1 : 0), U32(chunks), U32(1)]);
    }

    /// <summary>y[j] = sum over the rows of x [rows, cols]: a thread per column for few rows; else block partials over
    /// column tiles x row chunks (at least 64 rows each, about <see cref="TargetBlocks"/> blocks), then a thread per column over the chunks.</summary>
    void ColumnSum(Device device, ulong x, ulong y, long rows, long cols)
    {
        var (tiles, chunks, chunkRows) = ColumnSumPlan(rows, cols);
        if (rows < 256 || tiles >= TargetBlocks)
        {
            Launch(PtxKernels.SumColsF32, cols, Ptr(x), Ptr(y), U32(rows), U32(cols), F32(1f));
            return;
        }
        using var partials = Work(device, checked((int)(chunks * cols)));
        LaunchGrid(PtxKernels.SumColsPartF32, GridOf(tiles * chunks), Block, 0, [Ptr(x), Ptr(partials), U32(rows), U32(cols), U32(chunkRows)]);
        Launch(PtxKernels.SumColsF32, cols, Ptr(partials), Ptr(y), U32(chunks), U32(cols), F32(1f));
    }
}
