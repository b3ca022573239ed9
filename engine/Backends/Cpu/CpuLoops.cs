namespace Sbp.Backends.Cpu;

/// <summary>
/// Loop helpers of the CPU backend: chunked parallel loops and strided iteration over "rows"
/// (every axis but the last) of several operands that share one iteration shape.
/// </summary>
static class CpuLoops
{
    /// <summary>Below this many elements of work a loop runs on the calling thread.</summary>
    public const long ParallelThreshold = 1 << 15;

    /// <summary>Runs body(start, end) over [0, count) in chunks, in parallel when work is large.</summary>
    public static void For(long count, long workPerItem, Action<long, long> body)
    {
        if (count <= 0) return;
        int threads = Environment.ProcessorCount;
        if (Workers(count, workPerItem) == 1)
        {
            body(0, count);
            return;
        }
        long chunks = Math.Min(count, threads * 4L);
        long per = (count + chunks - 1) / chunks;
        Parallel.For(0, (int)((count + per - 1) / per), c =>
        {
            long s = c * per;
            body(s, Math.Min(count, s + per));
        });
    }

    /// <summary>How many threads <see cref="For"/> and <see cref="ForWorkers"/> use for this work (1: the calling thread alone).</summary>
    public static int Workers(long count, long workPerItem) =>
        count <= 1 || count * Math.Max(1, workPerItem) < ParallelThreshold ? 1 : (int)Math.Min(count, Environment.ProcessorCount);

    /// <summary>
    /// Runs body(worker, item) for every item of [0, count) on <paramref name="workers"/> threads that take
    /// items in turn from a shared counter; worker w in [0, workers) owns whatever the caller set aside for
    /// it (a slot of scratch allocated before the loop, so running out of memory is reported on the caller).
    /// </summary>
    public static void ForWorkers(long count, int workers, Action<int, long> body)
    {
        if (workers <= 1)
        {
            for (long i = 0; i < count; i++) body(0, i);
            return;
        }
        long next = -1;
        Parallel.For(0, workers, new ParallelOptions { MaxDegreeOfParallelism = workers }, w =>
        {
            for (long i = Interlocked.Increment(ref next); i < count; i = Interlocked.Increment(ref next)) body(w, i);
        });
    }

    /// <summary>
    /// Iterates the rows (all axes but the last) of dims, in parallel chunks, in blocks of consecutive
    /// rows along the second-to-last axis: body(offsets, count) gets each operand's element offset at
    /// the block's first row and walks count rows itself (row k of operand j at offsets[j] + k
    /// strides[j][^2]) and, in each, the last axis (length dims[^1], strides[j][^1]). Blocks keep the
    /// per-row bookkeeping out of short rows (a bias add over 24 channels, a head split of 24).
    /// </summary>
    public static void ForRows(int[] dims, long[][] strides, Action<long[], int> body)
    {
        int outer = dims.Length - 1;
        int operands = strides.Length;
        if (outer == 0)
        {
            body(new long[operands], 1);
            return;
        }
        long rows = 1;
        for (int i = 0; i < outer; i++) rows *= dims[i];
        int inner = outer - 1, size = dims[inner];
        For(rows, dims[^1], (start, end) =>
        {
            var index = new int[outer];
            var offsets = new long[operands];
            long r = start;
            for (int i = outer - 1; i >= 0; i--)
            {
                index[i] = (int)(r % dims[i]);
                r /= dims[i];
                for (int k = 0; k < operands; k++) offsets[k] += index[i] * strides[k][i];
            }
            for (long row = start; row < end;)
            {
                int count = (int)Math.Min(end - row, size - index[inner]);
                body(offsets, count);
                row += count;
                index[inner] += count;
                for (int k = 0; k < operands; k++) offsets[k] += count * strides[k][inner];
                if (index[inner] < size) continue;
                // Carry: back to the start of the block axis, one step on the axes before it.
                for (int k = 0; k < operands; k++) offsets[k] -= strides[k][inner] * size;
                index[inner] = 0;
                for (int i = inner - 1; i >= 0; i--)
                {
                    for (int k = 0; k < operands; k++) offsets[k] += strides[k][i];
                    if (++index[i] < dims[i]) break;
                    for (int k = 0; k < operands; k++) offsets[k] -= strides[k][i] * dims[i];
                    index[i] = 0;
                }
            }
        });
    }
}
