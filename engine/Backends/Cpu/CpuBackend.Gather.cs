using System.Buffers;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using Sbp.Tensors;

namespace Sbp.Backends.Cpu;

// Gather and scatter-add along one axis (the SBP pack and unpack), at memory bandwidth: tensors
// are viewed as [outer, size, inner]; rows of `inner` floats move as block copies, and runs of
// consecutive indices (sorted kept positions) merge into one longer copy. Split is in CpuBackend.Layout.cs.
public sealed unsafe partial class CpuBackend
{
    public void IndexSelect(Tensor source, int dim, Tensor indices, Tensor destination) => IndexSelect(source, dim, indices, destination, forLater: false);

    /// <summary>
    /// For SBP's saved copies: a destination of at least <see cref="StreamingBytes"/> is written with
    /// streaming stores (no read-for-ownership of its lines, no eviction of what the forward pass
    /// still reads); it is read again only in backward.
    /// </summary>
    public void IndexSelectForLater(Tensor source, int dim, Tensor indices, Tensor destination) => IndexSelect(source, dim, indices, destination, forLater: true);

    void IndexSelect(Tensor source, int dim, Tensor indices, Tensor destination, bool forLater)
    {
        var (outer, srcSize, inner) = Geometry.Split(source.Shape, dim);
        int n = (int)indices.Numel;
        CheckIndices(indices, srcSize, CheckFailures.IndexOutOfRange("index_select", srcSize));
        if (outer == 0 || n == 0 || inner == 0) return;
        nint ps = source.Pointer, pd = destination.Pointer, pi = indices.Pointer;
        if (source.DType.Size() == 2)
        {
            // 16-bit rows of an odd length (even ones move as Float32 pairs): one copy per row
            CpuLoops.For(outer * n, inner, (s, e) =>
            {
                int* idx = (int*)pi;
                for (long r = s; r < e; r++)
                    Buffer.MemoryCopy((ushort*)ps + (r / n * srcSize + idx[r % n]) * inner, (ushort*)pd + r * inner, inner * 2, inner * 2);
            });
            return;
        }
        if (inner == 1)
        {
            // single elements (along the last axis: Swin's relative position bias, [H, T] read at N*N positions): a plain loop
            CpuLoops.For(outer * n, 1, (s, e) =>
            {
                int* idx = (int*)pi;
                int i = (int)(s % n);
                float* from = (float*)ps + s / n * srcSize, to = (float*)pd;
                for (long r = s; r < e; r++)
                {
                    to[r] = from[idx[i]];
                    if (++i == n)
                    {
                        i = 0;
                        from += srcSize;
                    }
                }
            });
            return;
        }
        bool stream = forLater && outer * n * inner * sizeof(float) >= StreamingBytes && Avx.IsSupported;
        // Parallel over the rows of dst ([outer, n] of them); each run of rows is one copy.
        CpuLoops.For(outer * n, inner, (s, e) =>
        {
            int* idx = (int*)pi;
            long o = s / n;
            int i = (int)(s % n);
            float* to = (float*)pd + s * inner;
            bool streamed = false;
            for (long r = s; r < e;)
            {
                int run = Run(idx, i, (int)Math.Min(n - i, e - r));
                long count = run * inner;
                // Short runs (attention rows of 24 floats) go through the caches: non-temporal stores of
                // partial lines, mixed with ordinary stores at their edges, ran at 2 GB/s.
                if (stream && count >= StreamingRun)
                {
                    StreamRun((float*)ps + (o * srcSize + idx[i]) * inner, to, count);
                    streamed = true;
                }
                else CopyRun((float*)ps + (o * srcSize + idx[i]) * inner, to, count);
                to += count;
                r += run;
                if ((i += run) == n)
                {
                    i = 0;
                    o++;
                }
            }
            if (streamed) Sse.StoreFence();                   // once per chunk, not per run
        });
    }

    public void IndexAdd(Tensor destination, int dim, Tensor indices, Tensor source)
    {
        var (outer, dstSize, inner) = Geometry.Split(destination.Shape, dim);
        int n = (int)indices.Numel;
        CheckIndices(indices, dstSize, CheckFailures.IndexOutOfRange("index_add", dstSize));
        if (outer == 0 || n == 0 || inner == 0) return;
        nint ps = source.Pointer, pd = destination.Pointer, pi = indices.Pointer;
        if (inner == 1)
        {
            // single elements: each outer row adds its n values in index order (the order the general path keeps), rows in parallel
            CpuLoops.For(outer, n, (s, e) =>
            {
                int* idx = (int*)pi;
                for (long o = s; o < e; o++)
                {
                    float* to = (float*)pd + o * dstSize, from = (float*)ps + o * n;
                    for (int i = 0; i < n; i++) to[idx[i]] += from[i];
                }
            });
            return;
        }
        if (Distinct(indices.I, n, dstSize))
        {
            // Every dst row receives at most one src row: all rows in parallel.
            CpuLoops.For(outer * n, inner, (s, e) =>
            {
                int* idx = (int*)pi;
                long o = s / n;
                int i = (int)(s % n);
                float* from = (float*)ps + s * inner;
                for (long r = s; r < e;)
                {
                    int run = Run(idx, i, (int)Math.Min(n - i, e - r));
                    AddInto((float*)pd + (o * dstSize + idx[i]) * inner, from, run * inner);
                    from += run * inner;
                    r += run;
                    if ((i += run) == n)
                    {
                        i = 0;
                        o++;
                    }
                }
            });
            return;
        }
        // Repeated indices add up in index order. Parallel over column blocks of the rows (every
        // task walks all indices for its columns), or over outer slices when rows are short.
        const long Block = 1024;
        long blocks = inner >= 2 * Block ? (inner + Block - 1) / Block : 1;
        CpuLoops.For(outer * blocks, n * Math.Min(inner, Block), (s, e) =>
        {
            int* idx = (int*)pi;
            for (long t = s; t < e; t++)
            {
                long o = t / blocks, c0 = t % blocks * Block;
                long width = blocks == 1 ? inner : Math.Min(Block, inner - c0);
                for (int i = 0; i < n; i++)
                    AddInto((float*)pd + (o * dstSize + idx[i]) * inner + c0, (float*)ps + (o * n + i) * inner + c0, width);
            }
        });
    }

    /// <summary>How many indices from i on (at most max) are consecutive: idx[i + j] == idx[i] + j.</summary>
    static int Run(int* idx, int i, int max)
    {
        int run = 1, first = idx[i];
        while (run < max && idx[i + run] == first + run) run++;
        return run;
    }

    /// <summary>Gathers writing at least this many bytes use streaming stores (<see cref="StreamRun"/>).</summary>
    const long StreamingBytes = 1L << 20;

    /// <summary>Runs of at least this many floats (4 KiB) are streamed; shorter ones are copied through the caches.</summary>
    const long StreamingRun = 1024;

    /// <summary>dst[0..count) = src[0..count) with non-temporal stores where dst is 32-byte aligned; the caller fences.</summary>
    static void StreamRun(float* src, float* dst, long count)
    {
        long j = 0;
        for (; j < count && ((nint)(dst + j) & 31) != 0; j++) dst[j] = src[j];
        for (; j + 8 <= count; j += 8) Avx.StoreAlignedNonTemporal(dst + j, Avx.LoadVector256(src + j));
        for (; j < count; j++) dst[j] = src[j];
    }

    /// <summary>dst[0..count) = src[0..count); short runs inline, long ones through memmove.</summary>
    static void CopyRun(float* src, float* dst, long count)
    {
        if (count >= 1024 || !Vector256.IsHardwareAccelerated)
        {
            Buffer.MemoryCopy(src, dst, count * sizeof(float), count * sizeof(float));
            return;
        }
        long j = 0;
        for (; j + 8 <= count; j += 8) Vector256.Store(Vector256.Load(src + j), dst + j);
        for (; j < count; j++) dst[j] = src[j];
    }

    /// <summary>dst[0..count) += src[0..count).</summary>
    static void AddInto(float* dst, float* src, long count)
    {
        if (count == 1)
        {
            *dst += *src;
            return;
        }
        var d = new Span<float>(dst, checked((int)count));
        TensorPrimitives.Add(d, new ReadOnlySpan<float>(src, (int)count), d);
    }

    /// <summary>True when no index repeats (indices already checked to lie in [0, size)).</summary>
    static bool Distinct(int* idx, int n, int size)
    {
        if (n <= 1) return true;
        if (n > size) return false;
        var seen = ArrayPool<bool>.Shared.Rent(size);
        try
        {
            Array.Clear(seen, 0, size);
            for (int i = 0; i < n; i++)
            {
                if (seen[idx[i]]) return false;
                seen[idx[i]] = true;
            }
            return true;
        }
        finally
        {
            ArrayPool<bool>.Shared.Return(seen);
        }
    }
}
