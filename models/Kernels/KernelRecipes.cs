using Sbp.PtxSim;

namespace Sbp.Models.Kernels;

/// <summary>One launch of a kernel: grid, block, dynamic shared memory and arguments.</summary>
sealed record KernelLaunch(uint Grid, uint Block, uint SharedBytes, KernelArg[] Args, string Note);

/// <summary>
/// How to launch each kernel of kernels/*.ptx on random inputs of a given tensor shape (for
/// <c>sbp kernels profile</c>). Shapes are read per family: elementwise kernels, optimizers and
/// sum_f32 use every element; row kernels (softmax, layer norm, cross-entropy, sum_rows/cols) view
/// the tensor as [rows, cols] with cols the last dimension; the SBP kernels view it as
/// [outer, N, inner] along <c>dim</c> and keep every other position along N (a keep ratio of 1/2).
/// </summary>
sealed class KernelRecipes(SimMemory memory, int seed, int[] shape, int dim, uint block)
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
        "gather_f32", "gather_f32x4", "scatter_add_f32", "scatter_add_f32x4", "scatter_add_atomic_f32",
        "add_f32", "mul_f32", "scale_f32", "relu_f32", "relu_bwd_f32", "gelu_tanh_f32", "gelu_tanh_bwd_f32",
        "gelu_erf_f32", "gelu_erf_bwd_f32", "bernoulli_mask_f32", "dropout_f32",
        "softmax_f32", "softmax_bwd_f32", "log_softmax_f32", "log_softmax_bwd_f32",
        "layer_norm_f32", "layer_norm_bwd_f32", "layer_norm_bwd_params_f32",
        "sum_f32", "sum_rows_f32", "sum_cols_f32", "cross_entropy_f32", "cross_entropy_bwd_f32", "sgd_f32", "adamw_f32",
    };

    public KernelLaunch Build(string entry) => entry switch
    {
        "gather_f32" or "gather_f32x4" or "scatter_add_f32" or "scatter_add_f32x4" or "scatter_add_atomic_f32" => Sbp(entry),
        "add_f32" or "mul_f32" => Flat(N, Floats(N), Floats(N), Floats(N), U32(N)),
        "scale_f32" => Flat(N, Floats(N), Floats(N), U32(N), KernelArg.F32(0.5f)),
        "relu_f32" or "gelu_tanh_f32" or "gelu_erf_f32" => Flat(N, Floats(N), Floats(N), U32(N)),
        "relu_bwd_f32" or "gelu_tanh_bwd_f32" or "gelu_erf_bwd_f32" => Flat(N, Floats(N), Floats(N), Floats(N), U32(N)),
        "bernoulli_mask_f32" => Flat((N + 3) / 4, Floats(N), U32(N), KernelArg.U64(0x5BD1E995UL), KernelArg.U64(0), KernelArg.F32(0.1f), KernelArg.F32(1f / 0.9f)),
        "dropout_f32" => Flat((N + 3) / 4, Floats(N), Floats(N), Floats(N), U32(N), KernelArg.U64(0x5BD1E995UL), KernelArg.U64(0), KernelArg.F32(0.1f), KernelArg.F32(1f / 0.9f)),
        "softmax_f32" or "log_softmax_f32" => PerRow(Floats(N), Floats(N), U32(Rows), U32(Cols)),
        "softmax_bwd_f32" or "log_softmax_bwd_f32" => PerRow(Floats(N, 0f, 0.1f), Floats(N), Floats(N), U32(Rows), U32(Cols)),
        "layer_norm_f32" => PerRow(Floats(N), Floats(Cols, 0.5f, 1.5f), Floats(Cols), Floats(N), Floats(Rows), Floats(Rows), U32(Rows), U32(Cols), KernelArg.F32(1e-5f)),
        "layer_norm_bwd_f32" => LayerNormBackward(),
        "layer_norm_bwd_params_f32" => Flat(Cols, Floats(Rows * Cols), Floats(Rows * Cols), Floats(Cols), Floats(Cols), U32(Rows), U32(Cols))
            with { Note = $"reduces {Rows} partial rows of {Cols} columns" },
        "sum_f32" => new KernelLaunch(Math.Min(Blocks(N), 1024u), block, 0, [Floats(N), Floats(1024), U32(N), KernelArg.F32(1f)], "first pass: one partial sum per block"),
        "sum_rows_f32" => PerRow(Floats(N), Floats(Rows), U32(Rows), U32(Cols), KernelArg.F32(1f)),
        "sum_cols_f32" => Flat(Cols, Floats(N), Floats(Cols), U32(Rows), U32(Cols), KernelArg.F32(1f)),
        "cross_entropy_f32" => PerRow(Floats(N, -3f, 3f), Ints(Rows, Cols), Ptr(0), Floats(Rows), Floats(Rows), U32(Rows), U32(Cols), KernelArg.F32(0.1f)),
        "cross_entropy_bwd_f32" => PerRow(Floats(N, -3f, 3f), Ints(Rows, Cols), Ptr(0), Floats(Rows, 2f, 3f), Floats(Rows), Floats(N), U32(Rows), U32(Cols),
            KernelArg.F32(0.1f), U32(1)),
        "sgd_f32" => Flat(N, Floats(N), Floats(N), Floats(N), U32(N), KernelArg.F32(0.01f), KernelArg.F32(0.9f), KernelArg.F32(0f),
            KernelArg.F32(1e-4f), U32(1), U32(0)),
        "adamw_f32" => Flat(N, Floats(N), Floats(N), Floats(N, -0.1f, 0.1f), Floats(N, 0f, 0.01f), U32(N), KernelArg.F32(0.99999f),
            KernelArg.F32(0.9f), KernelArg.F32(0.999f), KernelArg.F32(1e-3f), KernelArg.F32(0.1f), KernelArg.F32(1e-8f)),
        _ => throw new ArgumentException($"no launch recipe for '{entry}'"),
    };

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
            [Floats(N), Floats(N), Floats(Cols, 0.5f, 1.5f), Floats(Rows), Floats(Rows, 0.5f, 2f), Floats(N), Floats(blocks * Cols), Floats(blocks * Cols), U32(Rows), U32(Cols)],
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
