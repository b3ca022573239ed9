using Sbp.Nn;
using Sbp.Rng;
using Sbp.Tensors;

namespace Sbp.Models.Architectures;

/// <summary>
/// Video Swin's WindowAttention3D on windows [B * nW, N, C]: qkv (Linear C -> 3C, run as q and k/v parts), multi-head
/// attention with a learned relative position bias (parameter "relative_position_bias_table"
/// [(2T-1)(2H-1)(2W-1), heads] for the configured window, read transposed through Ops.IndexSelect on the
/// flattened index) and an optional shifted-window mask [nW, 1, N, N], then proj (Linear C -> C). For an
/// effective window smaller than the configured one, <see cref="BiasIndex"/> picks the official
/// <c>index[:N, :N]</c> slice or the true offsets (<see cref="SwinBiasIndex"/>).
/// </summary>
public sealed class WindowAttention3d : Module
{

    public WindowAttention3d(int dim, int heads, (int T, int H, int W) window, bool qkvBias, RandomSource rng, Device? device = null,
        SwinBiasIndex biasIndex = SwinBiasIndex.Official) : base(device)
    {
        ArgumentNullException.ThrowIfNull(rng);
        if (dim < 1 || heads < 1 || dim % heads != 0)
            throw new ArgumentException($"WindowAttention3d(dim {dim}, heads {heads}): dim must be divisible by heads.");
        Dim = dim;
        Heads = heads;
        Window = window;
        BiasIndex = biasIndex;
        Scale = 1f / MathF.Sqrt(dim / heads);
        int rows = (2 * window.T - 1) * (2 * window.H - 1) * (2 * window.W - 1);
        Init.TruncatedNormal(RegisterParameter("relative_position_bias_table", NewState(rows, heads)), 0.02f, rng);
        Qkv = RegisterModule("qkv", new Linear(dim, 3 * dim, rng, qkvBias, device));
        Proj = RegisterModule("proj", new Linear(dim, dim, rng, true, device));
    }

    public int Dim { get; }
    public int Heads { get; }
    /// <summary>The configured window (the bias table's layout); a block may use a smaller effective window.</summary>
    public (int T, int H, int W) Window { get; }
    /// <summary>How a smaller effective window reads the bias table.</summary>
    public SwinBiasIndex BiasIndex { get; }
    public float Scale { get; }
    public Linear Qkv { get; }
    public Linear Proj { get; }
    public Tensor RelativePositionBiasTable => Parameter("relative_position_bias_table");

    /// <summary>Attention over windows of the configured size without a mask.</summary>
    public override Tensor Forward(Tensor x) => Forward(x, Window, null);

    /// <summary>
    /// x [B * nW, N, C] with N = the volume of <paramref name="window"/> (at most the configured
    /// window per axis); <paramref name="mask"/> [nW, 1, N, N] of 0 / -100 or null.
    /// </summary>
    public Tensor Forward(Tensor x, (int T, int H, int W) window, Tensor? mask)
    {
        ArgumentNullException.ThrowIfNull(x);
        int n = window.T * window.H * window.W;
        if (x.Rank != 3 || x.Shape[1] != n || x.Shape[2] != Dim)
            throw new ShapeMismatchException($"WindowAttention3d(dim {Dim}): windows must be [B * nW, {n}, {Dim}] for window {window}, got {x.Shape}.");
        int b = x.Shape[0], hd = Dim / Heads;
        using var scope = TensorScope.Begin();
        var (q, k, v) = MultiHeadAttention.ProjectHeads(Qkv, x, Heads);             // [B, H, N, Dh]
        var bias = RelativeBias(window);                                                // [H, N, N]
        var o = Ops.ScaledDotProductAttention(q, k, v, bias, mask, Scale);             // [B, H, N, Dh]
        var merged = Ops.Reshape(Ops.Permute(o, 0, 2, 1, 3), b, n, Dim);
        return scope.Keep(Proj.Forward(merged));
    }

    /// <summary>The bias [heads, N, N] for an effective window: table rows picked by the relative position index.</summary>
    Tensor RelativeBias((int T, int H, int W) window)
    {
        int n = window.T * window.H * window.W;
        var idx = Constant($"relative_position_index {window}", window, () =>
        {
            var index = SwinGeometry.RelativePositionIndex(window, Window, BiasIndex);
            return Tensor.FromArray(index, new Shape(index.Length), Device);
        });
        // the table [T, H] transposed first (small), so the gather writes [H, N * N] directly: no permute of the N * N
        // rows, and its backward adds each head's gradient into one row of the table (the same sums in the same order)
        var columns = Ops.IndexSelect(Ops.Permute(RelativePositionBiasTable, 1, 0), 1, idx);   // [H, N * N]
        return Ops.Reshape(columns, Heads, n, n);
    }
}
