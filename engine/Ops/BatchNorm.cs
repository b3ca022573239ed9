using Sbp.Autograd;
using Sbp.Backends;
using Sbp.Stochastic;
using Sbp.Tensors;

namespace Sbp;

/// <summary>How <see cref="Ops.BatchNorm"/> treats its statistics.</summary>
public enum BatchNormMode
{
    /// <summary>
    /// Batch statistics (biased variance) normalize; the running statistics are updated in place
    /// with the unbiased variance; backward goes through the batch statistics.
    /// </summary>
    Train,
    /// <summary>The running statistics normalize and are not updated; gradients reach x, weight and bias.</summary>
    Eval,
    /// <summary>
    /// The forward of <see cref="Eval"/> (running statistics kept, never updated) while weight and bias
    /// train: the "batch norm frozen, affine trained" setting of per-frame backbones. dx is computed too.
    /// </summary>
    Frozen,
}

// Batch normalization over [N, C, ...] (2-D images [N, C, H, W], video [N, C, T, H, W], or [N, C]).
public static partial class Ops
{
    /// <summary>
    /// Batch norm with PyTorch's semantics over x [N, C, ...]: per channel c,
    /// y = (x - mean_c) / sqrt(var_c + eps) * weight[c] + bias[c] (weight and bias [C] optional).
    /// <see cref="BatchNormMode.Train"/> uses the batch mean and biased variance over N and the
    /// trailing axes and updates <paramref name="runningMean"/> and <paramref name="runningVar"/> in
    /// place (running = (1 - momentum) running + momentum batch, the unbiased variance for
    /// runningVar; null running statistics are not tracked); it saves x and the per-channel mean and
    /// invstd. <see cref="BatchNormMode.Eval"/> and <see cref="BatchNormMode.Frozen"/> normalize with
    /// the running statistics (required) and leave them unchanged; they save per-channel copies of
    /// the statistics (so a later in-place update cannot change this op's gradient) and x only when
    /// the weight needs a gradient. In every mode, when only the bias needs a gradient nothing is
    /// saved (dbias is the gradient summed over all axes but the channel axis). Running statistics
    /// are plain Float32 [C] tensors that must not require grad. The weight is referenced for backward when x needs a gradient.
    /// </summary>
    public static Tensor BatchNorm(Tensor x, Tensor? weight, Tensor? bias, Tensor? runningMean, Tensor? runningVar,
        BatchNormMode mode, float momentum = 0.1f, float eps = 1e-5f)
    {
        if (AutocastWidens(x, weight, bias, runningMean, runningVar)) return Widening([x, weight, bias, runningMean, runningVar], wide => BatchNorm(wide[0]!, wide[1], wide[2], wide[3], wide[4], mode, momentum, eps));
        const string op = "batch_norm";
        CheckFloat(op, x);
        if (x.Rank < 2)
            throw new ShapeMismatchException($"{op}: the input must be [N, C, ...] (rank >= 2: [N, C], [N, C, H, W] or [N, C, T, H, W]), got {x.Shape}.");
        if (!Enum.IsDefined(mode)) throw new ArgumentOutOfRangeException(nameof(mode), $"{op}: unknown mode {mode}.");
        if (!(eps > 0f)) throw new ArgumentOutOfRangeException(nameof(eps), $"{op}: eps must be > 0, got {eps}.");
        if (!(momentum >= 0f && momentum <= 1f))
            throw new ArgumentOutOfRangeException(nameof(momentum), $"{op}: momentum must be in [0, 1], got {momentum}.");
        int c = x.Shape[1];
        var channels = new Shape(c);
        CheckPerChannel(op, x, weight, "weight", channels);
        CheckPerChannel(op, x, bias, "bias", channels);
        CheckRunningStat(op, x, runningMean, "runningMean", channels);
        CheckRunningStat(op, x, runningVar, "runningVar", channels);

        Tensor[] inputs = (weight, bias) switch
        {
            (null, null) => [x],
            (not null, null) => [x, weight],
            (null, not null) => [x, bias],
            _ => [x, weight, bias],
        };
        int wi = weight is null ? -1 : 1, bi = bias is null ? -1 : (weight is null ? 1 : 2);
        bool weightNeedsGrad = weight is not null && weight.RequiresGrad;

        // Only the bias trains (x and the weight are constants): dbias is the gradient summed over
        // every axis but the channel axis, and nothing needs saving.
        bool biasOnly = !x.RequiresGrad && !weightNeedsGrad;
        int[] nonChannelAxes = [0, .. Enumerable.Range(2, x.Rank - 2)];
        // SBP: training mode normalizes over every axis but channels (refused along the region
        // dimension); with running statistics it is position-wise, the statistics kept whole.
        var trainRule = SbpRule.RowWise(nonChannelAxes, [1, 2], [], "batch norm in training mode normalizes over it; use BatchNormMode.Frozen or Eval inside a region");
        var evalRule = SbpRule.RowWise([1], [1, 2], [1, 2]);

        Tensor y;   // allocated after the per-channel buffers: out of memory there leaves nothing behind
        if (mode == BatchNormMode.Train)
        {
            long perChannel = x.Numel / Math.Max(c, 1);
            if (perChannel <= 1)
            {
                throw new ShapeMismatchException(
                    $"{op}: expected more than 1 value per channel when training, got input {x.Shape} ({perChannel} value per channel); " +
                    "use a larger batch or BatchNormMode.Eval / Frozen.");
            }
            using var mean = New(op, channels, x);
            using var invStd = New(op, channels, x);
            y = New(op, x.Shape, x);
            x.Backend.BatchNormTrainForward(x, weight, bias, runningMean, runningVar, momentum, eps, y, mean, invStd);
            if (biasOnly)
                return Tape.Record(op, y, inputs, [], ctx => NormGradArray(inputs.Length, null, wi, null, bi, BiasOnlyGrad(ctx, bi, nonChannelAxes)), trainRule);
            return Tape.Record(op, y, inputs, [x, mean, invStd, weight is not null && x.RequiresGrad ? weight : null], ctx =>
            {
                var (dx, dw, db) = NormGrads(op, ctx, wi, bi);
                var w = wi > 0 && dx is not null ? ctx.Saved(3) : null;
                ctx.Grad.Backend.BatchNormBackward(ctx.Grad, ctx.Saved(0), w, ctx.Saved(1), ctx.Saved(2), dx, dw, db, eps);
                return NormGradArray(inputs.Length, dx, wi, dw, bi, db);
            }, trainRule);
        }

        if (runningMean is null || runningVar is null)
        {
            throw new ArgumentException($"{op}: mode {mode} normalizes with the running statistics; pass runningMean and runningVar ([{c}]).");
        }
        using var meanCopy = New(op, channels, x);
        using var inv = New(op, channels, x);
        y = New(op, x.Shape, x);
        var backend = x.Backend;
        backend.Copy(runningMean, meanCopy);
        backend.Unary(UnaryOp.AddScalar, runningVar, inv, eps);
        backend.Unary(UnaryOp.Sqrt, inv, inv);
        backend.Unary(UnaryOp.RDivScalar, inv, inv, 1f);
        backend.BatchNormInferenceForward(x, weight, bias, meanCopy, inv, y);
        if (biasOnly)
            return Tape.Record(op, y, inputs, [], ctx => NormGradArray(inputs.Length, null, wi, null, bi, BiasOnlyGrad(ctx, bi, nonChannelAxes)), evalRule);
        return Tape.Record(op, y, inputs,
            [weightNeedsGrad ? x : null, meanCopy, inv, weight is not null && x.RequiresGrad ? weight : null], ctx =>
            {
                var (dx, dw, db) = NormGrads(op, ctx, wi, bi);
                var xs = dw is not null ? ctx.Saved(0) : null;
                var w = wi > 0 && dx is not null ? ctx.Saved(3) : null;
                ctx.Grad.Backend.BatchNormInferenceBackward(ctx.Grad, xs, w, ctx.Saved(1), ctx.Saved(2), dx, dw, db);
                return NormGradArray(inputs.Length, dx, wi, dw, bi, db);
            }, evalRule);
    }

    /// <summary>A weight, bias or running statistic: Float32 on x's device, one value per channel.</summary>
    static void CheckPerChannel(string op, Tensor x, Tensor? p, string role, Shape expected) =>
        CheckNormParameter(op, x, p, role, expected, $", one value per channel of the input {x.Shape} ({expected[0]} channels on axis 1)");

    static void CheckRunningStat(string op, Tensor x, Tensor? stat, string role, Shape expected)
    {
        CheckPerChannel(op, x, stat, role, expected);
        if (stat is not null && stat.RequiresGrad)
            throw new ArgumentException($"{op}: {role} {stat.Shape} requires grad; running statistics are plain buffers (set RequiresGrad = false).");
    }

    /// <summary>Allocates the gradients a normalization node needs: x (input 0), weight (wi) and bias (bi), -1 when absent.</summary>
    static (Tensor? dx, Tensor? dw, Tensor? db) NormGrads(string op, BackwardContext ctx, int wi, int bi)
    {
        Tensor? dx = null, dw = null, db = null;
        if (ctx.NeedsGrad(0)) dx = New(op + ".backward", ctx.InputShape(0), ctx.Grad);
        if (wi > 0 && ctx.NeedsGrad(wi)) dw = New(op + ".backward", ctx.InputShape(wi), ctx.Grad);
        if (bi > 0 && ctx.NeedsGrad(bi)) db = New(op + ".backward", ctx.InputShape(bi), ctx.Grad);
        return (dx, dw, db);
    }

    static Tensor?[] NormGradArray(int count, Tensor? dx, int wi, Tensor? dw, int bi, Tensor? db)
    {
        var grads = new Tensor?[count];
        grads[0] = dx;
        if (wi > 0) grads[wi] = dw;
        if (bi > 0) grads[bi] = db;
        return grads;
    }
}
