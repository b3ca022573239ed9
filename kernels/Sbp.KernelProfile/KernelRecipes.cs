using Sbp.Backends.Cuda;
using Sbp.PtxSim;

namespace Sbp.KernelProfile;

/// <summary>One launch of a kernel: grid, block, dynamic shared memory and arguments.</summary>
public sealed record KernelLaunch(uint Grid, uint Block, uint SharedBytes, KernelArg[] Args, string Note);

/// <summary>
/// How to launch each kernel of kernels/*.ptx on random inputs of a given tensor shape (for
/// <c>sbp kernels profile</c>). Shapes are read per family: elementwise kernels, optimizers and
/// sum_f32 use every element; row kernels (softmax, layer norm, cross-entropy, sum_rows/cols) view
/// the tensor as [rows, cols] with cols the last dimension; the SBP kernels view it as
/// [outer, N, inner] along <c>dim</c> and keep every other position along N (a keep ratio of 1/2).
/// </summary>
public sealed class KernelRecipes(SimMemory memory, int seed, int[] shape, int dim, uint block)
{
    readonly Random _rng = new(seed);
    readonly List<ulong> _allocations = [];

    public IReadOnlyList<ulong> Allocations => _allocations;

    long Numel => shape.Aggregate(1L, (p, d) => p * d);
    int Cols => shape[^1];
    int Rows => checked((int)(Numel / Math.Max(Cols, 1)));
    int N => checked((int)Numel);

    public static IReadOnlySet<string> Known { get; } = new HashSet<string>(StringComparer.Ordinal)
    {
        "gather_f32", "gather_f32x4", "scatter_add_f32", "scatter_add_f32x4", "scatter_add_atomic_f32", "check_indices_i32", "check_above_f32",
        "unary_f32", "binary_f32", "strided_copy_f32", "transpose_f32", "reduce_f32", "bce_f32", "bce_bwd_f32", "max_pool3d_f32", "max_pool3d_bwd_f32",
        "add_f32", "mul_f32", "scale_f32", "relu_f32", "relu_bwd_f32", "gelu_tanh_f32", "gelu_tanh_bwd_f32",
        "gelu_erf_f32", "gelu_erf_bwd_f32", "bernoulli_mask_f32", "dropout_f32",
        "softmax_f32", "softmax_bwd_f32", "log_softmax_f32", "log_softmax_bwd_f32", "attention_softmax_f32",
        "layer_norm_f32", "layer_norm_bwd_f32", "layer_norm_bwd_params_f32",
        "sum_f32", "sum_rows_f32", "sum_cols_f32", "sum_cols_part_f32", "reduce_part_f32", "cross_entropy_f32", "cross_entropy_bwd_f32", "sgd_f32", "adamw_f32", "clip_coef_f32", "scale_by_f32",
        "to_bf16_f32", "to_f32_bf16", "to_f16_f32", "to_f32_f16", "bias_act_b16", "bias_act_bwd_b16", "binary_b16", "gather_b16",
    };

    /// <summary>A shape that shows the kernel at work, for help.</summary>
    public static string ExampleShape(string entry) => entry switch
    {
        _ when entry.StartsWith("gather", StringComparison.Ordinal) || entry.StartsWith("scatter", StringComparison.Ordinal) => "8,16,64",
        _ when entry.StartsWith("max_pool3d", StringComparison.Ordinal) => "4,8,16,16",
        "reduce_f32" => "4,8,256",
        "reduce_part_f32" => "8,4096,24",
        "sum_cols_part_f32" => "4096,96",
        "layer_norm_bwd_params_f32" => "64,96",
        _ when RowKernel(entry) => "256,96",
        _ => "65536",
    };

    /// <summary>How the kernel reads --shape, for help.</summary>
    public static string ShapeMeaning(string entry) => entry switch
    {
        _ when entry.StartsWith("gather", StringComparison.Ordinal) || entry.StartsWith("scatter", StringComparison.Ordinal) => "[outer, N, inner] along --dim, every other position kept",
        _ when entry.StartsWith("max_pool3d", StringComparison.Ordinal) => "[planes..., T, H, W], 2x2x2 windows",
        "reduce_f32" => "[outer, N, inner], summed over N (--dim)",
        "reduce_part_f32" => "[outer, N, inner], summed over N (--dim) in chunks: the first of two passes",
        "sum_cols_part_f32" => "[rows, cols], summed over rows in chunks: the first of two passes",
        "binary_f32" or "strided_copy_f32" => "[rows, cols] (last dim cols)",
        _ when RowKernel(entry) => "[rows, cols], one block per row",
        _ => "all elements",
    };

    static bool RowKernel(string entry) => entry.StartsWith("softmax", StringComparison.Ordinal) || entry.StartsWith("log_softmax", StringComparison.Ordinal) ||
        entry.StartsWith("attention_softmax", StringComparison.Ordinal) ||
        entry.StartsWith("layer_norm", StringComparison.Ordinal) || entry.StartsWith("cross_entropy", StringComparison.Ordinal) ||
        entry is "sum_rows_f32" or "sum_cols_f32" or "binary_f32" or "strided_copy_f32";

    public KernelLaunch Build(string entry) => entry switch
    {
        "gather_f32" or "gather_f32x4" or "gather_b16" or "scatter_add_f32" or "scatter_add_f32x4" or "scatter_add_atomic_f32" => Sbp(entry),
        "check_indices_i32" => Flat(N, Ints(N, 1000), U32(N), U32(1000), Ints(4, 1), U32(1)) with { Note = $"{N} indices in 0..999, all in range" },
        "check_above_f32" => Flat(N, Floats(N), U32(N), KernelArg.F32(float.NegativeInfinity), Ints(4, 1), U32(1)) with { Note = $"{N} finite values, all above -inf" },
        "add_f32" or "mul_f32" => Flat(N, Floats(N), Floats(N), Floats(N), U32(N)),
        "scale_f32" => Flat(N, Floats(N), Floats(N), U32(N), KernelArg.F32(0.5f)),
        "relu_f32" or "gelu_tanh_f32" or "gelu_erf_f32" => Flat(N, Floats(N), Floats(N), U32(N)),
        "relu_bwd_f32" or "gelu_tanh_bwd_f32" or "gelu_erf_bwd_f32" => Flat(N, Floats(N), Floats(N), Floats(N), U32(N)),
        "bernoulli_mask_f32" => Flat((N + 3) / 4, Floats(N), U32(N), KernelArg.U64(0x5BD1E995UL), KernelArg.U64(0), KernelArg.F32(0.1f), KernelArg.F32(1f / 0.9f)),
        "dropout_f32" => Flat((N + 3) / 4, Floats(N), Floats(N), Floats(N), U32(N), KernelArg.U64(0x5BD1E995UL), KernelArg.U64(0), KernelArg.F32(0.1f), KernelArg.F32(1f / 0.9f)),
        "softmax_f32" or "log_softmax_f32" => PerRow(Floats(N), Floats(N), U32(Rows), U32(Cols)),
        // a bias over every row and a window mask of 2 planes over rows in groups of 4 (Swin's shifted windows), P also in bfloat16
        "attention_softmax_f32" => PerRow(Floats(N), Floats(N), Floats(N), Floats(N), Floats((N + 1) / 2), U32(Rows), U32(Cols), U32(Rows),
            U32(Math.Max(1, Rows / 8)), U32(2), U32(Math.Max(1, Rows / 8)), U32(0)) with { SharedBytes = (uint)(4 * Cols), Note = "bias, window mask and a bfloat16 copy of P" },
        "softmax_bwd_f32" or "log_softmax_bwd_f32" => PerRow(Floats(N, 0f, 0.1f), Floats(N), Floats(N), U32(Rows), U32(Cols)),
        "layer_norm_f32" => PerRow(Floats(N), Floats(Cols, 0.5f, 1.5f), Floats(Cols), Floats(N), Floats(Rows), Floats(Rows), U32(Rows), U32(Cols), KernelArg.F32(1e-5f), U32(0), U32(0)),
        "layer_norm_bwd_f32" => LayerNormBackward(),
        "layer_norm_bwd_params_f32" => Flat(Cols, Floats(Rows * Cols), Floats(Rows * Cols), Floats(Cols), Floats(Cols), U32(Rows), U32(Cols))
            with { Note = $"reduces {Rows} partial rows of {Cols} columns" },
        "sum_f32" => new KernelLaunch(Math.Min(Blocks(N), 1024u), block, 0, [Floats(N), Floats(1024), U32(N), KernelArg.F32(1f)], "first pass: one partial sum per block"),
        "sum_rows_f32" => PerRow(Floats(N), Floats(Rows), U32(Rows), U32(Cols), KernelArg.F32(1f)),
        "sum_cols_f32" => Flat(Cols, Floats(N), Floats(Cols), U32(Rows), U32(Cols), KernelArg.F32(1f)),
        "sum_cols_part_f32" => ColumnPartials(),
        "reduce_part_f32" => ReducePartials(),
        "cross_entropy_f32" => PerRow(Floats(N, -3f, 3f), Ints(Rows, Cols), Ptr(0), Floats(Rows), Floats(Rows), U32(Rows), U32(Cols), KernelArg.F32(0.1f), U32(0)),
        "cross_entropy_bwd_f32" => PerRow(Floats(N, -3f, 3f), Ints(Rows, Cols), Ptr(0), Floats(Rows, 2f, 3f), Floats(Rows), Floats(N), U32(Rows), U32(Cols),
            KernelArg.F32(0.1f), U32(1), U32(0)),
        "clip_coef_f32" => new(1, 1, 0, [Floats(1, 0f, 4f), KernelArg.F32(1f), Floats(1), Floats(1)], "one thread: the norm and coefficient from a sum of squares"),
        "scale_by_f32" => Flat(N, Floats(N), U32(N), Floats(1)),
        // 16-bit buffers: N two-byte elements in (N + 1) / 2 floats' bytes
        "to_bf16_f32" or "to_f16_f32" => Flat(N, Floats(N), Floats((N + 1) / 2), U32(N)),
        "to_f32_bf16" or "to_f32_f16" => Flat(N, Floats((N + 1) / 2), Floats(N), U32(N)),
        // bfloat16 (random bits of Float32 pairs read as bfloat16 pairs: finite), GELU (erf), a bias over the last dim
        "bias_act_b16" => Flat(N, Floats((N + 1) / 2), Floats(Cols), Floats((N + 1) / 2), U32(N), U32(Cols), U32(0), U32(1)) with { Note = "bfloat16 GELU (erf) with a bias" },
        // a Float32 residual plus a bfloat16 branch of its shape
        "binary_b16" => Flat(N, Floats(N), Floats((N + 1) / 2), Floats(N), U32(N), U32(1), U32(N), U32(0), U32(1), U32(0)) with { Note = "Float32 + bfloat16" },
        "bias_act_bwd_b16" => Flat(N, Floats((N + 1) / 2), Floats(Cols), Floats(N), Floats(N), U32(N), U32(Cols), U32(0), U32(1)) with { Note = "bfloat16 GELU (erf) with a bias" },
        "sgd_f32" => Flat(N, Floats(N), Floats(N), Floats(N), U32(N), KernelArg.F32(0.01f), KernelArg.F32(0.9f), KernelArg.F32(0f),
            KernelArg.F32(1e-4f), U32(1), U32(0)),
        "adamw_f32" => Flat(N, Floats(N), Floats(N), Floats(N, -0.1f, 0.1f), Floats(N, 0f, 0.01f), U32(N), KernelArg.F32(0.99999f),
            KernelArg.F32(0.9f), KernelArg.F32(0.999f), KernelArg.F32(1e-3f), KernelArg.F32(0.1f), KernelArg.F32(1e-8f)),
        "unary_f32" => Flat(N, Floats(N), Floats(N), U32(N), U32(1), KernelArg.F32(0f)) with { Note = $"exp (op 1) of {N} elements, grid-stride" },
        "binary_f32" => Strided(N, [Rows, Cols], [Cols, 1], [0, 1], (meta, note) =>
            [Floats(N), Floats(Cols), Floats(N), U32(N), U32(2), meta, U32(0)], "a bias add: [rows, cols] + [cols] (op add)"),
        "strided_copy_f32" => Strided(N, [Rows, Cols], [Cols, 1], [1, Rows], (meta, note) =>
            [Floats(N), Floats(N), U32(N), U32(2), meta, U32(0)], "a transpose: [rows, cols] to [cols, rows]"),
        "reduce_f32" => Reduce(),
        "transpose_f32" => Transpose(),
        "bce_f32" => Flat(N, Floats(N, -3f, 3f), Floats(N, 0f, 1f), Ptr(0), Floats(N), U32(N), U32(0)) with { Note = $"{N} logits and targets, no pos_weight" },
        "bce_bwd_f32" => Flat(N, Floats(N, -3f, 3f), Floats(N, 0f, 1f), Ptr(0), Floats(1), Floats(N), Floats(N), U32(N), U32(0), U32(0))
            with { Note = $"{N} logits and targets, a scalar upstream gradient, both gradients" },
        "max_pool3d_f32" or "max_pool3d_bwd_f32" => MaxPool(entry),
        _ => throw new ArgumentException($"no launch recipe for '{entry}'"),
    };

    /// <summary>A kernel over an iteration space with per-axis strides: meta = dims, then two stride rows, as Int32 (the CUDA backend's layout).</summary>
    KernelLaunch Strided(long work, int[] dims, int[] stridesA, int[] stridesB, Func<KernelArg, string, KernelArg[]> args, string note)
    {
        var meta = Meta([.. dims, .. stridesA, .. stridesB]);
        return new KernelLaunch(Blocks(work), block, 0, args(meta, note), $"{note}, {work} work items");
    }

    /// <summary>[rows, cols] to [cols, rows] through 32 x 32 tiles, as the CUDA backend launches a permute that moves the last axis.</summary>
    KernelLaunch Transpose()
    {
        long tilesA = (Rows + 31) / 32, tilesB = (Cols + 31) / 32;
        return new KernelLaunch((uint)Math.Min(tilesA * tilesB, 65535), 256, 0,
            [Floats(N), Floats(N), U32(2), Meta([Cols, Rows, 1, Cols, Rows, 1]), U32(1), U32(0), U32(tilesA), U32(tilesB), U32(1), U32(0)],
            $"a transpose of [rows, cols] in {tilesA * tilesB} tiles of 32 x 32 (block 256)");
    }

    /// <summary>A sum over --dim of [outer, N, inner]: one thread per output, meta = odims, ostrides, rdims, rstrides (rank 2).</summary>
    KernelLaunch Reduce()
    {
        var (d, outer, n, inner, meta) = OverDim();
        long nOut = (long)outer * inner;
        return new KernelLaunch(Blocks(nOut), block, 0, [Floats(N), Floats(nOut), U32(nOut), U32(n), U32(2), meta, U32(0)],
            $"sum over dim {d}: [outer {outer}, N {n}, inner {inner}] to {nOut} outputs, one thread each");
    }

    /// <summary>--shape as [outer, N, inner] around --dim, and the reduction's meta over N (odims, ostrides, rdims, rstrides; rank 2).</summary>
    (int Dim, int Outer, int N, int Inner, KernelArg Meta) OverDim()
    {
        int d = dim < 0 ? dim + shape.Length : dim;
        if (d < 0 || d >= shape.Length) throw new ArgumentException($"--dim {dim} is out of range for a shape of rank {shape.Length}");
        int outer = checked((int)shape[..d].Aggregate(1L, (p, v) => p * v)), n = shape[d];
        int inner = checked((int)shape[(d + 1)..].Aggregate(1L, (p, v) => p * v));
        return (d, outer, n, inner, Meta([outer, inner, n * inner, 1, 1, n, 0, inner]));
    }

    /// <summary>Shape metadata as the CUDA backend passes it: by value, in a 256-byte parameter.</summary>
    static KernelArg Meta(int[] values) => KernelArg.Bytes(PtxKernels.MetaOf("kernel recipe", values));

    /// <summary>The column sum's first pass as the CUDA backend launches it: column tiles x row chunks of at least 64 rows, about 1024 blocks.</summary>
    KernelLaunch ColumnPartials()
    {
        var (tiles, chunks, chunkRows) = CudaBackend.ColumnSumPlan(Rows, Cols);
        return new KernelLaunch(CudaBackend.GridOf(tiles * chunks), block, 0, [Floats(N), Floats(chunks * Cols), U32(Rows), U32(Cols), U32(chunkRows)],
            $"first pass of a column sum: {tiles} column tiles x {chunks} chunks of {chunkRows} rows into partials");
    }

    /// <summary>The general reduction's first pass over --dim of [outer, N, inner] as the CUDA backend launches it: a block per output
    /// and chunk of at least 1024 reduced elements, about 1024 blocks.</summary>
    KernelLaunch ReducePartials()
    {
        var (d, outer, n, inner, meta) = OverDim();
        long nOut = (long)outer * inner;
        var (chunks, chunkLen) = CudaBackend.ReducePlan(nOut, n);
        return new KernelLaunch(CudaBackend.GridOf(nOut * chunks), block, 0,
            [Floats(N), Floats(nOut * chunks), U32(nOut), U32(n), U32(2), meta, U32(0), U32(chunkLen), U32(chunks)],
            $"first pass of a sum over dim {d}: {nOut} outputs x {chunks} chunks of {chunkLen} elements, a block each");
    }

    /// <summary>Max pooling 2x2x2, stride 2, over the last three dims (fewer: padded with 1s); the leading dims are planes.</summary>
    KernelLaunch MaxPool(string entry)
    {
        var dims = shape.Length >= 3 ? shape : [.. Enumerable.Repeat(1, 3 - shape.Length), .. shape];
        int t = dims[^3], h = dims[^2], w = dims[^1];
        int planes = checked((int)dims[..^3].Aggregate(1L, (p, v) => p * v));
        int kt = Math.Min(2, t), kh = Math.Min(2, h), kw = Math.Min(2, w);
        int ot = (t - kt) / kt + 1, oh = (h - kh) / kh + 1, ow = (w - kw) / kw + 1;
        int inPlane = t * h * w, outPlane = ot * oh * ow, outN = planes * outPlane;
        string note = $"{planes} planes of {t}x{h}x{w}, kernel and stride {kt}x{kh}x{kw}, {outN} outputs";
        if (entry == "max_pool3d_f32")
            return new KernelLaunch(Blocks(outN), block, 0, [Floats((long)planes * inPlane), Floats(outN), Ints(outN, 1), U32(planes),
                U32(t), U32(h), U32(w), U32(ot), U32(oh), U32(ow), U32(kt), U32(kh), U32(kw), U32(kt), U32(kh), U32(kw), U32(0), U32(0), U32(0)], note);
        return new KernelLaunch(Blocks(outN), block, 0, [Floats(outN), Ints(outN, inPlane), Floats((long)planes * inPlane), U32(outN), U32(inPlane), U32(outPlane)],
            $"backward: {note}, each output's gradient to a random argmax in its plane");
    }

    KernelLaunch Sbp(string entry)
    {
        int d = dim < 0 ? dim + shape.Length : dim;
        if (d < 0 || d >= shape.Length) throw new ArgumentException($"--dim {dim} is out of range for a shape of rank {shape.Length}");
        int outer = checked((int)shape[..d].Aggregate(1L, (p, v) => p * v));
        int n = shape[d];
        int inner = checked((int)shape[(d + 1)..].Aggregate(1L, (p, v) => p * v));
        int kept = (n + 1) / 2;
        bool vector = entry.EndsWith("x4", StringComparison.Ordinal);
        if (vector && inner % 4 != 0)
            throw new ArgumentException($"{entry} needs inner % 4 == 0; the shape gives inner = {inner} (the product of the dims after dim {d})");
        var idx = Enumerable.Range(0, kept).Select(i => 2 * i).ToArray();   // every other position
        ulong full = FloatsAt((long)outer * n * inner), compact = FloatsAt((long)outer * kept * inner);
        int work = outer * kept * inner / (vector ? 4 : 1);
        var args = entry.StartsWith("gather", StringComparison.Ordinal)
            ? new[] { Ptr(full), Ptr(Upload(idx)), Ptr(compact), U32(outer), U32(n), U32(kept), U32(inner) }
            : [Ptr(compact), Ptr(Upload(idx)), Ptr(full), U32(outer), U32(n), U32(kept), U32(inner)];
        return new KernelLaunch(Blocks(work), block, 0, args, $"[outer {outer}, N {n}, inner {inner}], {kept} kept positions (every other)");
    }

    KernelLaunch LayerNormBackward()
    {
        uint blocks = (uint)Math.Min(Rows, 128);
        return new KernelLaunch(blocks, block, (uint)(8 * Cols),
            [Floats(N), Floats(N), Floats(Cols, 0.5f, 1.5f), Floats(Rows), Floats(Rows, 0.5f, 2f), Floats(N), Floats(blocks * Cols), Floats(blocks * Cols), U32(Rows), U32(Cols), U32(0)],
            $"{blocks} blocks, partial column sums per block; dynamic shared memory 8 x cols");
    }

    KernelLaunch Flat(long work, params KernelArg[] args) => new(Blocks(work), block, 0, args, $"{work} work items, grid-stride");

    KernelLaunch PerRow(params KernelArg[] args) => new((uint)Math.Clamp(Rows, 1, 65535), block, 0, args, $"one block per row: {Rows} rows x {Cols} cols");

    KernelArg Floats(long n, float lo = -1f, float hi = 1f) => Ptr(FloatsAt(n, lo, hi));

    ulong FloatsAt(long n, float lo = -1f, float hi = 1f) =>
        Upload(Enumerable.Range(0, checked((int)n)).Select(_ => lo + (hi - lo) * (float)_rng.NextDouble()).ToArray());

    KernelArg Ints(int n, int bound) => Ptr(Upload(Enumerable.Range(0, n).Select(_ => _rng.Next(bound)).ToArray()));

    uint Blocks(long work) => (uint)Math.Clamp((work + block - 1) / block, 1, 65535);

    ulong Upload(float[] data)
    {
        ulong a = memory.Allocate(Math.Max(4L * data.Length, 4));
        _allocations.Add(a);
        memory.Write<float>(a, data);
        return a;
    }

    ulong Upload(int[] data)
    {
        ulong a = memory.Allocate(Math.Max(4L * data.Length, 4));
        _allocations.Add(a);
        memory.Write<int>(a, data);
        return a;
    }

    static KernelArg Ptr(ulong address) => KernelArg.Ptr(address);
    static KernelArg U32(long v) => KernelArg.U32(checked((uint)v));
}
