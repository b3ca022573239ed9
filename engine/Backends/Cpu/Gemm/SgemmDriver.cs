using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Sbp.Backends.Cpu.Gemm;

/// <summary>
/// The CPU SGEMM behind <see cref="CpuBackend.Gemm"/> (GotoBLAS/BLIS design, row-major):
///   for each task (a batch entry and a range of rows or columns of C):
///     for jc over its columns in steps of NC:        B block [kc, nc] packed (per worker, L3)
///       for pc over K in steps of about KC:          beta applies on the first step, then C += ...
///         pack B; for ic over its rows in steps of MC: A block [mc, kc] packed (per worker, L2)
///           for jr in steps of NR, ir in steps of MR: micro-kernel on an MR x NR tile (B panel in L1)
/// Transposes are absorbed by the packing, so one kernel serves all four combinations.
/// Parallelism: tasks split the batch and then the longer of M and N (in whole MR / NR tiles),
/// so every C element belongs to exactly one task; workers take tasks in any order from a
/// shared counter. K is never split, and the K blocking depends only on K, so each element is
/// the same sequence of operations whatever the thread count or scheduling: results are
/// bitwise reproducible. Packing buffers are one workspace slot per worker, from the caller.
/// </summary>
static unsafe class SgemmDriver
{
    const int MR = SgemmKernel.MR, NR = SgemmKernel.NR;
    public const int KC = 256, MC = 144, NC = 2048;

    /// <summary>Below this many flops a call runs on the calling thread.</summary>
    const long ParallelFlops = 1L << 21;

    /// <summary>How one call is cut into tasks and how big a worker's packing slot is (0 on the direct path).</summary>
    readonly record struct Plan(int Splits, bool SplitM, int ChunkTiles, int Tasks, int Workers, int Kc, long SlotA, long SlotFloats, bool Direct);

    /// <summary>Tests set this to check that the packed path gives the direct path's results.</summary>
    internal static bool ForcePacked { get; set; }

    /// <summary>
    /// Small products (attention's per-window matrices: M, N up to 128, one K block) skip packing:
    /// packing would cost as much as the product. The tile reads A and B in place
    /// (<see cref="SgemmKernel.DirectTile"/>), with the same sums as the packed path; a transposed B
    /// is first copied row-major into the worker's slot (K x N floats).
    /// </summary>
    static bool UsesDirect(in GemmSpec g) =>
        !ForcePacked && SgemmKernel.UsesAvx2 && g.M <= 128 && g.N <= 128 && g.K <= KC;

    /// <summary>
    /// A narrow weight gradient (dW = dY^T X: A transposed, B not, M &lt;= 128, N &lt;= 48, K the rows of a
    /// batch, at least 8 blocks) splits K into fixed blocks of <see cref="KC"/>: too few output tiles to share
    /// among the threads, and every thread would pack all of B (swin-micro's 24 x 24 x 32768 ran at 100
    /// GFLOP/s, 160 split). Each block's product goes through the direct tile
    /// (both operands read in place: rows of A^T and of B are contiguous) into its own partial; the
    /// partials are summed in block order. The blocks depend on K only, so results do not depend on the
    /// thread count (they differ from the unsplit sum's rounding).
    /// </summary>
    static bool UsesSplitK(in GemmSpec g) =>
        !ForcePacked && SgemmKernel.UsesAvx2 && g.TransA && !g.TransB && g.M <= 128 && g.N <= 48 && g.K >= 8 * KC &&
        (g.Batch == 1 || g.StrideC != 0);

    static int SplitKBlocks(in GemmSpec g) => (g.K + KC - 1) / KC;

    static Plan MakePlan(in GemmSpec g, int threads, Half16? half = null)
    {
        int mTiles = (g.M + MR - 1) / MR, nTiles = (g.N + NR - 1) / NR;
        int batch = g.StrideC == 0 ? 1 : g.Batch;
        double flops = 2.0 * g.M * g.N * Math.Max(g.K, 1) * batch;
        int maxWorkers = flops < ParallelFlops ? 1 : Math.Max(1, threads);
        bool splitM = mTiles >= nTiles;
        int along = splitM ? mTiles : nTiles;
        int splits = 1;
        if (maxWorkers > 1 && batch < 4 * maxWorkers)
            splits = Math.Min(maxWorkers / Gcd(batch, maxWorkers), along);
        int chunkTiles = (along + splits - 1) / splits;
        splits = (along + chunkTiles - 1) / chunkTiles;
        long tasks = (long)batch * splits;
        int workers = (int)Math.Min(maxWorkers, tasks);
        int kc = KcBlock(g.K);
        int rows = splitM ? chunkTiles * MR : mTiles * MR, cols = splitM ? nTiles * NR : chunkTiles * NR;
        if (half is null && UsesDirect(g)) return new Plan(splits, splitM, chunkTiles, checked((int)tasks), workers, kc, 0, g.TransB ? RoundUp((long)g.K * cols, 16) : 0, true);
        long slotA = RoundUp((long)Math.Min(MC, rows) * kc + SgemmPacking.Slack, 16);
        long slotB = RoundUp((long)Math.Min(NC, cols) * kc, 16);
        // 16-bit operands: each packing block is widened into scratch after the packed blocks (as large as they are)
        return new Plan(splits, splitM, chunkTiles, checked((int)tasks), workers, kc, slotA, (half is null ? 1 : 2) * (slotA + slotB), false);
    }

    static int Gcd(int a, int b) => b == 0 ? a : Gcd(b, a % b);
    static long RoundUp(long x, long m) => (x + m - 1) / m * m;

    /// <summary>The K block: K cut into equal steps of at most KC (depends on K only).</summary>
    static int KcBlock(int k)
    {
        if (k <= 0) return 0;
        int blocks = (k + KC - 1) / KC;
        return (k + blocks - 1) / blocks;
    }

    /// <summary>Floats of packing workspace <see cref="Run"/> (or, with <paramref name="half"/>, <see cref="RunHalf"/>) needs for this call (0 when K is 0).</summary>
    public static long WorkspaceFloats(in GemmSpec g, int threads, bool half = false)
    {
        if (g.M <= 0 || g.N <= 0 || g.K <= 0 || g.Batch <= 0) return 0;
        if (!half && UsesSplitK(g)) return (long)SplitKBlocks(g) * g.M * g.N;
        var plan = MakePlan(g, threads, half ? default(Half16) : null);
        return plan.Workers * plan.SlotFloats;
    }

    /// <summary>
    /// The operands of a <see cref="RunHalf"/> call: addresses of entry 0, the 16-bit type, and which operands are Float32
    /// to be rounded to it (the others are 16-bit).
    /// </summary>
    internal readonly record struct Half16(nint A, nint B, Sbp.Tensors.DType Type, bool RoundA = false, bool RoundB = false, nint C16 = 0);

    /// <summary>
    /// <see cref="Run"/> on 16-bit A and B: the packed path, each block of A and B widened (exactly) into the worker's scratch
    /// right before the Float32 packing, so each operand is read once from memory at 2 bytes an element and the sums are the
    /// packed path's (the same as widening the whole operands first). An operand flagged in <paramref name="roundA"/> or
    /// <paramref name="roundB"/> is Float32 instead, each block rounded to the type there (the same as casting it first).
    /// With <paramref name="c16"/>, C (Float32, laid out as the 16-bit C) is scratch: each block of it is rounded into
    /// c16 as soon as its last K block is summed, while it is in cache, instead of in a pass over the whole C afterwards.
    /// </summary>
    public static void RunHalf(in GemmSpec g, void* a, void* b, Sbp.Tensors.DType type, float* c, float* workspace, int threads,
        bool roundA = false, bool roundB = false, ushort* c16 = null)
    {
        if (g.M <= 0 || g.N <= 0 || g.Batch <= 0) return;
        if (g.K <= 0 || (g.StrideC == 0 && g.Batch > 1))
            throw new ArgumentException($"gemm: 16-bit operands need K > 0 and one C per batch entry (M {g.M}, N {g.N}, K {g.K}, batch {g.Batch}, C stride {g.StrideC}).");
        var half = new Half16((nint)a, (nint)b, type, roundA, roundB, (nint)c16);
        var plan = MakePlan(g, threads, half);
        var spec = g;
        nint pc = (nint)c, pw = (nint)workspace;
        if (plan.Workers == 1)
        {
            for (int t = 0; t < plan.Tasks; t++) RunTask(spec, plan, t, null, null, c, workspace, half);
            return;
        }
        int next = -1;
        Parallel.For(0, plan.Workers, new ParallelOptions { MaxDegreeOfParallelism = plan.Workers }, w =>
        {
            float* slot = (float*)pw + w * plan.SlotFloats;
            for (int t = Interlocked.Increment(ref next); t < plan.Tasks; t = Interlocked.Increment(ref next))
                RunTask(spec, plan, t, null, null, (float*)pc, slot, half);
        });
    }

    /// <summary>
    /// Rows x cols of an operand (row stride ld, from element <paramref name="at"/>) into a dense Float32 [rows, cols] at dst:
    /// widened from 16 bits, or, with <paramref name="round"/>, Float32 rounded to the 16-bit type.
    /// </summary>
    static void WidenBlock(nint operand, bool round, long at, long ld, int rows, int cols, float* dst, Sbp.Tensors.DType type)
    {
        for (int r = 0; r < rows; r++)
        {
            var to = new Span<float>(dst + (long)r * cols, cols);
            if (round) Sbp.Tensors.HalfPrecision.Round(new ReadOnlySpan<float>((float*)operand + at + r * ld, cols), to, type);
            else Sbp.Tensors.HalfPrecision.Widen(new ReadOnlySpan<ushort>((ushort*)operand + at + r * ld, cols), to, type);
        }
    }

    /// <summary>
    /// C[b] = alpha op(A[b]) op(B[b]) + beta C[b] for every batch entry; a, b, c point at entry 0
    /// (offsets applied). A batch whose C stride is 0 applies its entries to the one C in order.
    /// </summary>
    public static void Run(in GemmSpec g, float* a, float* b, float* c, float* workspace, int threads)
    {
        if (g.M <= 0 || g.N <= 0 || g.Batch <= 0) return;
        if (g.K <= 0)
        {
            int entries = g.StrideC == 0 ? 1 : g.Batch;
            for (int e = 0; e < entries; e++)
                ScaleC(c + e * g.StrideC, (long)g.M * g.N, g.StrideC == 0 ? MathF.Pow(g.Beta, g.Batch) : g.Beta);
            return;
        }
        if (g.StrideC == 0 && g.Batch > 1)
        {
            for (int e = 0; e < g.Batch; e++)
                Run(g with { Batch = 1 }, a + e * g.StrideA, b + e * g.StrideB, c, workspace, threads);
            return;
        }
        if (UsesSplitK(g))
        {
            for (int e = 0; e < g.Batch; e++)
                RunSplitK(g, a + e * g.StrideA, b + e * g.StrideB, c + e * g.StrideC, workspace, threads);
            return;
        }
        var plan = MakePlan(g, threads);
        var spec = g;
        float* ws = workspace;
        if (plan.Workers == 1)
        {
            for (int t = 0; t < plan.Tasks; t++) RunTask(spec, plan, t, a, b, c, ws);
            return;
        }
        nint pa = (nint)a, pb = (nint)b, pc = (nint)c, pw = (nint)ws;
        int next = -1;
        Parallel.For(0, plan.Workers, new ParallelOptions { MaxDegreeOfParallelism = plan.Workers }, w =>
        {
            float* slot = (float*)pw + w * plan.SlotFloats;
            for (int t = Interlocked.Increment(ref next); t < plan.Tasks; t = Interlocked.Increment(ref next))
                RunTask(spec, plan, t, (float*)pa, (float*)pb, (float*)pc, slot);
        });
    }

    /// <summary>One entry of a <see cref="UsesSplitK"/> product: block partials in parallel, then their sum in block order.</summary>
    static void RunSplitK(in GemmSpec g, float* a, float* b, float* c, float* partials, int threads)
    {
        int m = g.M, n = g.N, blocks = SplitKBlocks(g), k = g.K;
        nint pa = (nint)a, pb = (nint)b, pp = (nint)partials;
        void Block(int blk)
        {
            int k0 = blk * KC, kc = Math.Min(KC, k - k0);
            float* ak = (float*)pa + (long)k0 * m, bk = (float*)pb + (long)k0 * n, p = (float*)pp + (long)blk * m * n;
            // op(A)(i, p) = A[p * M + i]: rows of A^T are 1 apart, K steps M apart.
            for (int jr = 0; jr < n; jr += NR)
                for (int ir = 0; ir < m; ir += MR)
                    SgemmKernel.DirectTile(kc, ak + ir, 1, m, bk + jr, n, p + (long)ir * n + jr, n, Math.Min(MR, m - ir), Math.Min(NR, n - jr), 1f, 0f);
        }
        // Small products stay on the calling thread, as MakePlan keeps them (the blocks fix the sums either way).
        if (threads <= 1 || 2.0 * m * n * k < ParallelFlops) for (int blk = 0; blk < blocks; blk++) Block(blk);
        else Parallel.For(0, blocks, new ParallelOptions { MaxDegreeOfParallelism = threads }, Block);
        // C = alpha (sum of the partials, in block order) + beta C.
        float alpha = g.Alpha, beta = g.Beta;
        long size = (long)m * n, i = 0;
        float* parts = (float*)pp;
        for (; i + 8 <= size; i += 8)
        {
            var sum = Vector256<float>.Zero;
            for (int blk = 0; blk < blocks; blk++) sum += Vector256.Load(parts + blk * size + i);
            var r = sum * alpha;
            if (beta != 0f) r += Vector256.Load(c + i) * beta;
            r.Store(c + i);
        }
        for (; i < size; i++)
        {
            float sum = 0f;
            for (int blk = 0; blk < blocks; blk++) sum += parts[blk * size + i];
            c[i] = beta == 0f ? alpha * sum : alpha * sum + beta * c[i];
        }
    }

    static void ScaleC(float* c, long count, float beta)
    {
        var span = new Span<float>(c, checked((int)count));
        if (beta == 0f) span.Clear();
        else if (beta != 1f) System.Numerics.Tensors.TensorPrimitives.Multiply(span, beta, span);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // hot from the first call; no tier-0 code
    static void RunTask(in GemmSpec g, in Plan plan, int task, float* a, float* b, float* c, float* slot, Half16? half = null)
    {
        int entry = task / plan.Splits, split = task % plan.Splits;
        int m0 = 0, m1 = g.M, n0 = 0, n1 = g.N;
        if (plan.SplitM)
        {
            m0 = split * plan.ChunkTiles * MR;
            m1 = Math.Min(g.M, m0 + plan.ChunkTiles * MR);
        }
        else
        {
            n0 = split * plan.ChunkTiles * NR;
            n1 = Math.Min(g.N, n0 + plan.ChunkTiles * NR);
        }
        a += entry * g.StrideA;
        b += entry * g.StrideB;
        c += entry * g.StrideC;
        long a16 = 0, b16 = 0, c16 = 0;   // element offsets of this entry into the 16-bit (or rounded) operands and the 16-bit C
        float* scratchA = null, scratchB = null;
        if (half is { } h)
        {
            a16 = entry * g.StrideA;
            b16 = entry * g.StrideB;
            c16 = entry * g.StrideC;
            scratchA = slot + plan.SlotFloats / 2;
            scratchB = scratchA + plan.SlotA;
        }
        if (plan.Direct)
        {
            // op(A)(i, p) = A[i * K + p], or A[p * M + i] when transposed; B row-major [K, N].
            long rowStride = g.TransA ? 1 : g.K, kStride = g.TransA ? g.M : 1;
            float* bRows = b + n0;
            long ldb = g.N;
            if (g.TransB)
            {
                // op(B)(p, j) = B[j * K + p]: columns n0..n1 copied to rows of the slot.
                int width = n1 - n0, kk = g.K, j8 = width / 8 * 8, p8 = kk / 8 * 8;
                for (int j = 0; j < j8; j += 8)
                    for (int p = 0; p < p8; p += 8)
                        SgemmPacking.Transpose8(b + (long)(n0 + j) * kk + p, kk, 8, slot + (long)p * width + j, width);
                for (int j = 0; j < width; j++)
                {
                    float* src = b + (long)(n0 + j) * kk;
                    for (int p = j < j8 ? p8 : 0; p < kk; p++) slot[(long)p * width + j] = src[p];
                }
                bRows = slot;
                ldb = width;
            }
            for (int jr = n0; jr < n1; jr += NR)
                for (int ir = m0; ir < m1; ir += MR)
                    SgemmKernel.DirectTile(g.K, a + ir * rowStride, rowStride, kStride, bRows + (jr - n0), ldb, c + (long)ir * g.N + jr, g.N,
                        Math.Min(MR, m1 - ir), Math.Min(NR, n1 - jr), g.Alpha, g.Beta);
            return;
        }
        float* ap = slot, bp = slot + plan.SlotA;
        int n = g.N, k = g.K, kcMax = plan.Kc;
        for (int jc = n0; jc < n1; jc += NC)
        {
            int nc = Math.Min(NC, n1 - jc);
            for (int pc = 0; pc < k; pc += kcMax)
            {
                int kc = Math.Min(kcMax, k - pc);
                float beta = pc == 0 ? g.Beta : 1f;
                if (half is { } hb)
                {
                    // B [K, N] (or [N, K] transposed): its [kc, nc] (or [nc, kc]) block widened, then packed from there
                    if (g.TransB) WidenBlock(hb.B, hb.RoundB, b16 + (long)jc * k + pc, k, nc, kc, scratchB, hb.Type);
                    else WidenBlock(hb.B, hb.RoundB, b16 + (long)pc * n + jc, n, kc, nc, scratchB, hb.Type);
                    SgemmPacking.PackB(scratchB, g.TransB, kc, nc, 0, kc, 0, nc, bp);
                }
                else SgemmPacking.PackB(b, g.TransB, k, n, pc, kc, jc, nc, bp);
                for (int ic = m0; ic < m1; ic += MC)
                {
                    int mc = Math.Min(MC, m1 - ic);
                    if (half is { } ha && !g.TransA && !ha.RoundA && ha.Type == Sbp.Tensors.DType.BFloat16 && Avx2.IsSupported)
                        SgemmPacking.PackABFloat16((ushort*)ha.A + a16, k, ic, mc, pc, kc, ap);   // widened in registers as it packs
                    else if (half is { } hw)
                    {
                        // A [M, K] (or [K, M] transposed): its [mc, kc] (or [kc, mc]) block widened, then packed from there
                        if (g.TransA) WidenBlock(hw.A, hw.RoundA, a16 + (long)pc * g.M + ic, g.M, kc, mc, scratchA, hw.Type);
                        else WidenBlock(hw.A, hw.RoundA, a16 + (long)ic * k + pc, k, mc, kc, scratchA, hw.Type);
                        SgemmPacking.PackA(scratchA, g.TransA, mc, kc, 0, mc, 0, kc, ap);
                    }
                    else SgemmPacking.PackA(a, g.TransA, g.M, k, ic, mc, pc, kc, ap);
                    for (int jr = 0; jr < nc; jr += NR)
                    {
                        int nr = Math.Min(NR, nc - jr);
                        float* bPanel = bp + (long)jr * kc;
                        float* cCol = c + (long)ic * n + jc + jr;
                        for (int ir = 0; ir < mc; ir += MR)
                            SgemmKernel.Tile(kc, ap + (long)ir * kc, bPanel, cCol + (long)ir * n, n,
                                Math.Min(MR, mc - ir), nr, g.Alpha, beta);
                    }
                    // the block's last K step is summed: rounded into the 16-bit C while the block is in cache
                    if (half is { C16: not 0 } hc && pc + kc == k)
                        for (int r = ic; r < ic + mc; r++)
                            Sbp.Tensors.HalfPrecision.Narrow(new ReadOnlySpan<float>(c + (long)r * n + jc, nc),
                                new Span<ushort>((ushort*)hc.C16 + c16 + (long)r * n + jc, nc), hc.Type);
                }
            }
        }
    }
}
