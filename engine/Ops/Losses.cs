using Sbp.Autograd;
using Sbp.Backends;
using Sbp.Tensors;

namespace Sbp;

/// <summary>How a loss combines its per-element (per-sample) values, as PyTorch's reduction argument.</summary>
public enum Reduction
{
    /// <summary>The mean, shape [] (cross-entropy with class weights: divided by the sum of the targets' weights).</summary>
    Mean,
    /// <summary>The sum, shape [].</summary>
    Sum,
    /// <summary>No reduction: one value per sample (cross-entropy, [N]) or per element (the others).</summary>
    None,
}

// Losses: cross-entropy (fused log-softmax + NLL), binary cross-entropy with logits (fused), MSE.
public static partial class Ops
{
    /// <summary>
    /// Cross-entropy of logits [N, C] against Int32 class targets [N] with PyTorch's semantics:
    /// loss_i = sum_c q_ic (-log softmax(z_i)_c), q_ic = (1 - eps) w[y_i] [c == y_i] + eps / C w[c]
    /// (eps = <paramref name="labelSmoothing"/> in [0, 1]; w = <paramref name="classWeights"/> [C], or 1).
    /// Mean divides the sum by sum_i w[y_i] (N without weights). One fused node; backward is
    /// g_i (softmax(z_i) sum_c q_ic - q_i). Saves logits, targets, the per-row log-sum-exp [N]
    /// (and the weights and the mean's denominator). Targets and class weights get no gradient.
    /// </summary>
    public static Tensor CrossEntropy(Tensor logits, Tensor targets, float labelSmoothing = 0f, Tensor? classWeights = null,
        Reduction reduction = Reduction.Mean)
    {
        // Under autocast (PyTorch's Float32 list) 16-bit logits are read as their exact widening by the kernels and saved as
        // they are: no cast pass; Float32 losses and gradients
        bool sixteen = Autocast16(logits) && classWeights is not { DType: not DType.Float32 };
        if (!sixteen && AutocastWidens(logits, targets, classWeights))
            return Widening([logits, targets, classWeights], wide => CrossEntropy(wide[0]!, wide[1]!, labelSmoothing, wide[2], reduction));
        const string op = "cross_entropy";
        CheckFloatOrAutocast16(op, logits, sixteen, "logits");
        CheckAlive(op, targets, "targets");
        CheckDevices(op, logits, targets);
        if (logits.Rank != 2)
            throw new ShapeMismatchException($"{op}: logits {logits.Shape} must be [N, C] (reshape [.., C] logits to [-1, C] first).");
        int n = logits.Shape[0], c = logits.Shape[1];
        if (targets.DType != DType.Int32 || targets.Shape != new Shape(n))
            throw new ShapeMismatchException($"{op}: targets must be Int32 class indices of shape [{n}] for logits {logits.Shape}; got {targets.DType} {targets.Shape}.");
        if (!(labelSmoothing >= 0f && labelSmoothing <= 1f))
            throw new ArgumentOutOfRangeException(nameof(labelSmoothing), $"{op}: labelSmoothing must be in [0, 1], got {labelSmoothing}.");
        if (classWeights is not null)
        {
            CheckFloat(op, classWeights, "class weights");
            CheckDevices(op, logits, classWeights);
            if (classWeights.Shape != new Shape(c))
                throw new ShapeMismatchException($"{op}: class weights {classWeights.Shape} must be [{c}], one per class of logits {logits.Shape}.");
        }
        CheckTargets(op, targets, c);

        var backend = logits.Backend;
        using var scope = TensorScope.Begin();   // out of memory midway frees every buffer made here
        var losses = Tensor.Empty(op, new Shape(n), logits.Device);
        var lse = Tensor.Empty(op, new Shape(n), logits.Device);
        backend.CrossEntropyForward(logits, targets, classWeights, labelSmoothing, losses, lse);
        Tensor output;
        Tensor? denominator = null;
        switch (reduction)
        {
            case Reduction.None:
                output = losses;
                break;
            case Reduction.Sum:
                using (losses) output = SumAll(op, losses);
                break;
            case Reduction.Mean:
                using (losses)
                {
                    output = SumAll(op, losses);
                    if (classWeights is null) backend.Unary(UnaryOp.MulScalar, output, output, 1f / n);
                    else
                    {
                        using var wy = Tensor.Empty(op, new Shape(n), logits.Device);
                        backend.IndexSelect(classWeights, 0, targets, wy);
                        denominator = SumAll(op, wy);
                        backend.Binary(BinaryOp.Div, output, denominator, output);
                    }
                }
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(reduction), reduction, $"{op}: unknown reduction.");
        }
        using var lseSaved = lse;
        using var denominatorSaved = denominator;
        return scope.Keep(Tape.Record(op, output, [logits], [logits, targets, lse, classWeights, denominator], ctx =>
        {
            var rowGrad = reduction != Reduction.Mean ? ctx.Grad
                : classWeights is null ? Mul(ctx.Grad, 1f / n) : Div(ctx.Grad, ctx.Saved(4));
            var dz = New(op + ".backward", ctx.InputShape(0), ctx.Grad);
            dz.Backend.CrossEntropyBackward(ctx.SavedAsHeld(0), ctx.Saved(1), classWeights is null ? null : ctx.Saved(3),
                labelSmoothing, ctx.Saved(2), rowGrad, dz);
            return [dz];
        }));
    }

    /// <summary>Every target must be a class index 0..C-1; the error names the first bad one (on a GPU: a bad one, raised at the
    /// host's next read, as the device checks them without the host waiting).</summary>
    static void CheckTargets(string op, Tensor targets, int classes) =>
        targets.Backend.CheckIndices(targets, classes, (i, t, note) => new ArgumentOutOfRangeException(nameof(targets),
            $"{op}: target {i} is {t}, outside the {classes} classes (valid: 0..{classes - 1}){note}."));

    /// <summary>
    /// Binary cross-entropy with logits, elementwise over any shape, computed stably as
    /// (1 - t) x + l (log(1 + exp(-|x|)) + max(-x, 0)) with l = 1 + (pos_weight - 1) t (PyTorch's
    /// BCEWithLogitsLoss). <paramref name="posWeight"/> [C] (or one element) broadcasts over the last
    /// axis. Targets are probabilities (usually 0..1, not checked) and do receive a gradient when
    /// they require one; posWeight does not. Saves logits and targets (and posWeight).
    /// </summary>
    public static Tensor BinaryCrossEntropyWithLogits(Tensor logits, Tensor targets, Tensor? posWeight = null,
        Reduction reduction = Reduction.Mean)
    {
        if (AutocastWidens(logits, targets, posWeight)) return Widening([logits, targets, posWeight], wide => BinaryCrossEntropyWithLogits(wide[0]!, wide[1]!, wide[2], reduction));
        const string op = "binary_cross_entropy_with_logits";
        CheckFloat(op, logits, "logits");
        CheckFloat(op, targets, "targets");
        CheckDevices(op, logits, targets);
        if (targets.Shape != logits.Shape)
            throw new ShapeMismatchException($"{op}: targets {targets.Shape} must have the shape of the logits {logits.Shape}.");
        int last = logits.Rank == 0 ? 1 : logits.Shape[-1];
        if (posWeight is not null)
        {
            CheckFloat(op, posWeight, "pos_weight");
            CheckDevices(op, logits, posWeight);
            if (posWeight.Numel != 1 && !(posWeight.Rank == 1 && posWeight.Shape[0] == last))
                throw new ShapeMismatchException($"{op}: pos_weight {posWeight.Shape} must be [{last}] (one weight per entry of the logits' last axis) or a single value.");
        }
        var backend = logits.Backend;
        var losses = New(op, logits.Shape, logits);
        backend.BceWithLogitsForward(logits, targets, posWeight, losses);
        long count = logits.Numel;
        var output = Reduce(op, losses, reduction);
        return Tape.Record(op, output, [logits, targets], [logits, targets, posWeight], ctx =>
        {
            var g = reduction == Reduction.Mean ? Mul(ctx.Grad, 1f / count) : ctx.Grad;
            var dx = ctx.NeedsGrad(0) ? New(op + ".backward", ctx.InputShape(0), ctx.Grad) : null;
            var dt = ctx.NeedsGrad(1) ? New(op + ".backward", ctx.InputShape(1), ctx.Grad) : null;
            ctx.Grad.Backend.BceWithLogitsBackward(ctx.Saved(0), ctx.Saved(1), posWeight is null ? null : ctx.Saved(2), g, dx, dt);
            return [dx, dt];
        });
    }

    /// <summary>Mean squared error (a - b)^2 of two tensors of one shape, reduced; a composition of recorded ops.</summary>
    public static Tensor MseLoss(Tensor a, Tensor b, Reduction reduction = Reduction.Mean)
    {
        if (AutocastWidens(a, b)) return Widening([a, b], wide => MseLoss(wide[0]!, wide[1]!, reduction));
        const string op = "mse_loss";
        CheckFloats(op, a, b);
        if (a.Shape != b.Shape)
            throw new ShapeMismatchException($"{op}: input {a.Shape} and target {b.Shape} must have the same shape (broadcast one of them explicitly with Ops.BroadcastTo).");
        using var diff = Sub(a, b);
        var squared = Mul(diff, diff);
        if (reduction == Reduction.None) return squared;
        using (squared)
            return reduction switch
            {
                Reduction.Sum => Sum(squared),
                Reduction.Mean => Mean(squared),
                _ => throw new ArgumentOutOfRangeException(nameof(reduction), reduction, $"{op}: unknown reduction."),
            };
    }

    /// <summary>Sum of all elements into a new tensor of shape [] (not recorded).</summary>
    static Tensor SumAll(string op, Tensor x)
    {
        var ones = new int[x.Rank];
        Array.Fill(ones, 1);
        var y = New(op, new Shape(ones), x);
        x.Backend.ReduceSum(x, y);
        return ViewAndDispose(y, Shape.Scalar);
    }

    /// <summary>Applies a reduction to per-element losses (consumes them when it reduces; not recorded).</summary>
    static Tensor Reduce(string op, Tensor losses, Reduction reduction)
    {
        if (reduction == Reduction.None) return losses;
        using (losses)
        {
            var y = SumAll(op, losses);
            if (reduction == Reduction.Mean) y.Backend.Unary(UnaryOp.MulScalar, y, y, 1f / losses.Numel);
            else if (reduction != Reduction.Sum) throw new ArgumentOutOfRangeException(nameof(reduction), reduction, $"{op}: unknown reduction.");
            return y;
        }
    }
}
