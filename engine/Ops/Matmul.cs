using Sbp.Autograd;
using Sbp.Backends;
using Sbp.Memory;
using Sbp.Stochastic;
using Sbp.Tensors;

namespace Sbp;

// Matrix products: matmul with NumPy-style batch broadcasting, and linear (x W^T + b).
public static partial class Ops
{
    /// <summary>
    /// Matrix product with torch.matmul's rules: 1-D operands are promoted to a row (left) or a
    /// column (right) vector and the added axis removed; batch axes broadcast. A 2-D right operand
    /// (the common x @ W) is one GEMM over all rows of x.
    /// </summary>
    public static Tensor Matmul(Tensor a, Tensor b)
    {
        if (Autocast.Type is { } low)
            return a.Rank >= 2 && b.Rank >= 2 && (a.Rank == 2 || b.Rank == 2 || a.Shape.ToArray()[..^2].SequenceEqual(b.Shape.ToArray()[..^2]))
                ? AutocastGemm(low, [a, b], t => Matmul(t[0]!, t[1]!))
                : AutocastLow("matmul", low, [a, b], t => Matmul(t[0]!, t[1]!));   // a 1-D or broadcast operand: the Float32 op on widenings
        CheckGemmOperands("matmul", a, b);
        if (a.Rank == 0 || b.Rank == 0)
            throw new ShapeMismatchException($"matmul: both operands need at least one dimension, got {a.Shape} @ {b.Shape}; use Mul for scalars.");
        if (a.Rank == 1)
        {
            using var row = Reshape(a, [1, a.Shape[0]]);
            using var r = Matmul(row, b);
            var dims = r.Shape.ToArray().ToList();
            // The row axis added to a: second-to-last of r, or its only axis when b was 1-D too ([1] -> []).
            dims.RemoveAt(b.Rank == 1 ? dims.Count - 1 : dims.Count - 2);
            return Reshape(r, [.. dims]);
        }
        if (b.Rank == 1)
        {
            using var col = Reshape(b, [b.Shape[0], 1]);
            using var r = Matmul(a, col);
            return Reshape(r, r.Shape.ToArray()[..^1]);
        }
        int m = a.Shape[-2], k = a.Shape[-1], n = b.Shape[-1];
        if (b.Shape[-2] != k)
            throw new ShapeMismatchException($"matmul: {a.Shape} @ {b.Shape}: the inner dimensions differ ({k} vs {b.Shape[-2]}); a's last dimension must equal b's second-to-last.");
        return b.Rank == 2 ? MatmulRows(a, b, m, k, n) : MatmulBatched(a, b, m, k, n);
    }

    /// <summary>
    /// The output gradient rounded to the 16-bit type <paramref name="dt"/> of a GEMM op's operands (autocast), as the
    /// 16-bit GEMMs of backward read it (PyTorch's backward runs them on the 16-bit gradient); null for Float32 operands.
    /// The GEMMs accumulate in Float32 and write Float32 input gradients.
    /// </summary>
    static Tensor? HalfGrad(BackwardContext ctx, DType dt) => dt.Is16Bit() ? CastTo(OpLabel.Current, ctx.Grad, dt) : null;

    /// <summary>A saved operand of a GEMM op's backward: as held (16-bit) for 16-bit operands, else in Float32.</summary>
    static Tensor GemmOperand(BackwardContext ctx, int index, DType dt) => dt.Is16Bit() ? ctx.SavedAsHeld(index) : ctx.Saved(index);

    /// <summary>The GEMM kernel; its packing workspace may run out of memory, then the output c is freed.</summary>
    static void Gemm(GemmSpec spec, Tensor a, Tensor b, Tensor c)
    {
        try { a.Backend.Gemm(spec, a, b, c); }
        catch
        {
            c.Dispose();
            throw;
        }
    }

    /// <summary>[..., M, K] @ [K, N]: one GEMM with rows = all leading axes times M.</summary>
    static Tensor MatmulRows(Tensor a, Tensor b, int m, int k, int n)
    {
        int rows = checked((int)(a.Numel / k));
        var outDims = a.Shape.ToArray();
        outDims[^1] = n;
        var c = NewOfType("matmul", new Shape(outDims), a);
        Gemm(new GemmSpec(false, false, rows, n, k), a, b, c);
        var dt = a.DType;
        return Tape.Record("matmul", c, [a, b], [b.RequiresGrad ? a : null, a.RequiresGrad ? b : null], ctx =>
        {
            Tensor? da = null, db = null;
            int rows = checked((int)(ctx.Grad.Numel / n));   // compact inside an SBP region
            using var g16 = HalfGrad(ctx, dt);
            var g = g16 ?? ctx.Grad;
            if (ctx.NeedsGrad(0))
            {
                da = New("matmul.backward", ctx.InputShape(0), ctx.Grad);
                Gemm(new GemmSpec(false, true, rows, k, n), g, GemmOperand(ctx, 1, dt), da);
            }
            if (ctx.NeedsGrad(1))
            {
                db = New("matmul.backward", ctx.InputShape(1), ctx.Grad);
                Gemm(new GemmSpec(true, false, k, n, rows), GemmOperand(ctx, 0, dt), g, db);
            }
            return [da, db];
        }, SbpRule.Matmul);
    }

    /// <summary>
    /// Batched product. Batch axes broadcast: an operand whose batch is a single matrix is reused
    /// with stride 0; any other broadcast is expanded first (BroadcastTo records its own backward).
    /// </summary>
    static Tensor MatmulBatched(Tensor a, Tensor b, int m, int k, int n)
    {
        var aBatch = new Shape(a.Shape.ToArray()[..^2]);
        var bBatch = new Shape(b.Shape.ToArray()[..^2]);
        var batch = Shape.Broadcast(aBatch, bBatch, $"matmul {a.Shape} @ {b.Shape} (batch axes)");
        Tensor? aExpanded = null, bExpanded = null;
        if (aBatch != batch && aBatch.Numel != 1) a = aExpanded = BroadcastTo(a, new Shape([.. batch, m, k]));
        if (bBatch != batch && bBatch.Numel != 1) b = bExpanded = BroadcastTo(b, new Shape([.. batch, k, n]));
        try
        {
            int count = checked((int)batch.Numel);
            long sa = a.Numel == (long)m * k ? 0 : (long)m * k;
            long sb = b.Numel == (long)k * n ? 0 : (long)k * n;
            var c = NewOfType("matmul", new Shape([.. batch, m, n]), a);
            Gemm(new GemmSpec(false, false, m, n, k, count, sa, sb, (long)m * n), a, b, c);
            var dt = a.DType;
            return Tape.Record("matmul", c, [a, b], [b.RequiresGrad ? a : null, a.RequiresGrad ? b : null], ctx =>
            {
                Tensor? da = null, db = null;
                using var g16 = HalfGrad(ctx, dt);
                var g = g16 ?? ctx.Grad;
                // Sizes from the gradient: inside an SBP region the rows or a batch axis may be compact.
                var gs = ctx.Grad.Shape;
                int m = gs[-2];
                var batch = new Shape(gs.ToArray()[..^2]);
                int count = checked((int)batch.Numel);
                long sa = ctx.InputShape(0).Numel == (long)m * k ? 0 : (long)m * k;
                long sb = ctx.InputShape(1).Numel == (long)k * n ? 0 : (long)k * n;
                if (ctx.NeedsGrad(0))
                {
                    // Per batch entry first; an operand reused across the batch sums its gradients.
                    var d = New("matmul.backward", new Shape([.. batch, m, k]), ctx.Grad);
                    Gemm(new GemmSpec(false, true, m, k, n, count, (long)m * n, sb, (long)m * k), g, GemmOperand(ctx, 1, dt), d);
                    da = GradTo(d, ctx.InputShape(0));
                }
                if (ctx.NeedsGrad(1))
                {
                    var d = New("matmul.backward", new Shape([.. batch, k, n]), ctx.Grad);
                    Gemm(new GemmSpec(true, false, k, n, m, count, sa, (long)m * n, (long)k * n), GemmOperand(ctx, 0, dt), g, d);
                    db = GradTo(d, ctx.InputShape(1));
                }
                return [da, db];
            }, SbpRule.Matmul);
        }
        finally
        {
            aExpanded?.Dispose();
            bExpanded?.Dispose();
        }
    }

    /// <summary>
    /// y = x W^T + b with PyTorch's layout: x [..., in], W [out, in], b [out] (optional).
    /// Backward: dx = g W, dW = g^T x, db = sum of g over rows; saves x (and references W).
    /// </summary>
    public static Tensor Linear(Tensor x, Tensor weight, Tensor? bias = null)
    {
        if (Autocast.Type is { } low) return AutocastGemm(low, [x, weight, bias], t => Linear(t[0]!, t[1]!, t[2]), floatWeight: 1);
        var (outF, inF) = CheckLinear("linear", x, weight, bias);
        return LinearOnRows("linear", x, weight, bias, inF, 0, outF);
    }

    /// <summary>
    /// y = x W[start : start + count]^T + b[start : start + count]: <see cref="Linear"/> on a block of
    /// the weight's rows, read in place (no copy of the weight is made or saved). Backward: dx from
    /// those rows; dW and db are full-size with only those rows set (the rest zero), so several such
    /// ops on one weight (attention's q and k/v parts of a qkv projection) accumulate into its gradient.
    /// </summary>
    public static Tensor LinearRows(Tensor x, Tensor weight, Tensor? bias, int start, int count)
    {
        const string op = "linear_rows";
        if (Autocast.Type is { } low) return AutocastGemm(low, [x, weight, bias], t => LinearRows(t[0]!, t[1]!, t[2], start, count), floatWeight: 1);
        var (allOut, inF) = CheckLinear(op, x, weight, bias);
        if (start < 0 || count < 1 || start + count > allOut)
            throw new ArgumentOutOfRangeException(nameof(start), $"{op}: rows [{start}, {start + count}) are outside the weight {weight.Shape} (rows 0..{allOut}).");
        return LinearOnRows(op, x, weight, bias, inF, start, count);
    }

    /// <summary>
    /// Checks x [..., in], W [out, in] and b [out] for a linear op; returns (out, in). A Float32 weight beside a 16-bit x is
    /// read rounded to x's type by the GEMMs (autocast keeps parameters in Float32 where the backend rounds while it packs).
    /// </summary>
    static (int Out, int In) CheckLinear(string op, Tensor x, Tensor weight, Tensor? bias)
    {
        CheckAlive(op, weight, "weight");
        if (x.DType.Is16Bit() && weight.DType == DType.Float32) CheckAlive(op, x, "input");
        else CheckGemmOperands(op, x, weight);
        CheckDevices(op, x, weight);
        if (weight.Rank != 2 || x.Rank == 0 || x.Shape[-1] != weight.Shape[1])
            throw new ShapeMismatchException($"{op}: input {x.Shape} and weight {weight.Shape} do not fit; the weight must be [out, in] with in = the input's last dimension ({(x.Rank == 0 ? "none" : x.Shape[-1].ToString())}).");
        int outF = weight.Shape[0];
        if (bias is not null)
        {
            CheckGemmOperands(op, x, bias);
            if (bias.Rank != 1 || bias.Shape[0] != outF)
                throw new ShapeMismatchException($"{op}: bias {bias.Shape} must be [{outF}] for weight {weight.Shape}.");
        }
        return (outF, weight.Shape[1]);
    }

    /// <summary>
    /// The linear op on weight rows [start, start + count) (all of them for <see cref="Linear"/>): the
    /// GEMMs read that block of W in place; a partial block's dW and db are full-size, zero elsewhere.
    /// </summary>
    static Tensor LinearOnRows(string op, Tensor x, Tensor weight, Tensor? bias, int inF, int start, int count)
    {
        bool whole = start == 0 && count == weight.Shape[0];
        long offset = (long)start * inF;
        int rows = checked((int)(x.Numel / inF));
        var outDims = x.Shape.ToArray();
        outDims[^1] = count;
        // 16-bit operands (autocast): a 16-bit output straight from the GEMM, or with a bias, the Float32 sum rounded once
        bool roundAfterBias = x.DType.Is16Bit() && bias is not null;
        var y = roundAfterBias ? Tensor.Empty(op, new Shape(outDims), x.Device) : NewOfType(op, new Shape(outDims), x);
        Gemm(new GemmSpec(false, true, rows, count, inF, OffsetB: offset), x, weight, y);
        using (var wideBias = roundAfterBias ? CastTo(op, bias!, DType.Float32) : null)
        {
            var b32 = wideBias ?? bias;
            if (b32 is not null && whole) y.Backend.Binary(BinaryOp.Add, y, b32, y);
            else if (b32 is not null)
                using (var b = New(op, new Shape(count), y))
                {
                    b.Backend.CopyAlongDim(b32, start, b, 0, 0, count, accumulate: false);
                    y.Backend.Binary(BinaryOp.Add, y, b, y);
                }
        }
        if (roundAfterBias)
            using (var sum = y)
                y = CastTo(op, sum, x.DType);
        Tensor[] inputs = bias is null ? [x, weight] : [x, weight, bias];
        var dt = x.DType;
        return Tape.Record(op, y, inputs, [weight.RequiresGrad ? x : null, x.RequiresGrad ? weight : null], ctx =>
        {
            Tensor? dx = null, dw = null, db = null;
            int rows = checked((int)(ctx.Grad.Numel / count));   // compact inside an SBP region
            using var g16 = HalfGrad(ctx, dt);
            var g = g16 ?? ctx.Grad;
            if (ctx.NeedsGrad(0))
            {
                dx = New(op + ".backward", ctx.InputShape(0), ctx.Grad);
                Gemm(new GemmSpec(false, false, rows, inF, count, OffsetB: offset), g, GemmOperand(ctx, 1, dt), dx);
            }
            if (ctx.NeedsGrad(1))
            {
                dw = whole ? New(op + ".backward", ctx.InputShape(1), ctx.Grad) : Tensor.Zeros(ctx.InputShape(1), ctx.Grad.Device);
                Gemm(new GemmSpec(true, false, count, inF, rows, OffsetC: offset), g, GemmOperand(ctx, 0, dt), dw);
            }
            if (inputs.Length == 3 && ctx.NeedsGrad(2))
            {
                if (whole) db = SumTo(ctx.Grad, ctx.InputShape(2));
                else
                {
                    db = Tensor.Zeros(ctx.InputShape(2), ctx.Grad.Device);
                    using var part = SumTo(ctx.Grad, new Shape(count));
                    db.Backend.CopyAlongDim(part, 0, db, start, 0, count, accumulate: false);
                }
            }
            return inputs.Length == 3 ? [dx, dw, db] : [dx, dw];
        }, SbpRule.RowWise([-1], 1, 2));
    }
}
