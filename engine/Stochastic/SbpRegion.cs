using Sbp.Autograd;
using Sbp.Memory;
using Sbp.Tensors;

namespace Sbp.Stochastic;

/// <summary>
/// An SBP region (docs/SBP.md): runs <c>body</c> on <c>x</c> over all positions (the forward is
/// unchanged) and, in backward, gives the region the gradient at its output times the keep mask
/// along dimension <c>dim</c>, caching and computing only what the kept positions need.
/// <code>
/// var y = SbpRegion.Run("stage1.block0", x, dim: 1, mask, h => block.Forward(h));
/// </code>
/// Region bodies compute their output from <c>x</c> and module parameters only, derive sizes from
/// their input's shape (recompute mode re-runs them on the kept slice), and return a tensor that
/// still carries the region dimension; tensors made inside may leave only as the output.
/// </summary>
public static class SbpRegion
{
    /// <summary>
    /// y = body(x) as one region. <paramref name="mask"/> (size x.Shape[dim]) picks the kept
    /// positions; null or all-kept with <see cref="RegionMode.SparseCache"/> is ordinary backprop.
    /// Outside a recording tape (evaluation, NoGrad) the body simply runs.
    /// </summary>
    public static Tensor Run(string name, Tensor x, int dim, KeepMask? mask, Func<Tensor, Tensor> body, RegionOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(body);
        options ??= RegionOptions.Default;
        int d = Shape.NormalizeAxis(dim, x.Rank, $"SBP region '{name}'");
        if (mask is not null && mask.Size != x.Shape[d])
            throw new ShapeMismatchException(
                $"SBP region '{name}': the keep mask covers {mask.Size} positions but dimension {d} of the input {x.Shape} has {x.Shape[d]}; draw the mask over that dimension.");
        if (mask is { KeptCount: 0 })
            throw new ArgumentException($"SBP region '{name}': the keep mask keeps no position; keep at least one.");
        var tape = Tape.Current;
        if (tape is null || tape.IsFreed || !Tape.IsGradEnabled) return body(x);

        bool keepsAll = mask is null || mask.KeptCount == mask.Size;
        var layout = mask is null ? null : new PositionLayout(d, mask.Size, mask.Kept.ToArray());
        switch (options.Mode)
        {
            case RegionMode.Oracle:
            {
                var y = body(x);
                if (keepsAll && !options.Rescale) return y;
                using (y) return Ops.GradMask(y, d, mask ?? KeepMask.All(x.Shape[d]), options.Rescale ? (float)(1.0 / mask!.KeepRatio) : 1f);
            }
            case RegionMode.SparseCache when keepsAll:
                return Plain(tape, name, x, body, mask?.Size ?? x.Shape[d]);
            case RegionMode.SparseCache:
                return SparseCache(tape, name, x, layout!, body, options);
            case RegionMode.Recompute when !keepsAll:
                return Recompute(tape, name, x, layout!, body, options);
            default:
                return Checkpoint(tape, name, x, keepsAll ? null : layout, body, options);
        }
    }

    /// <summary>Keep = 1: ordinary backprop, reported with its saved bytes.</summary>
    static Tensor Plain(Tape tape, string name, Tensor x, Func<Tensor, Tensor> body, int size)
    {
        int first = tape.Nodes.Count;
        var y = Scoped(body, x);
        long bytes = SavedBytesFrom(tape, first);
        tape.AddRegionReport(new RegionReport(name, RegionMode.SparseCache, size, size, bytes, bytes));
        return y;
    }

    /// <summary>
    /// body(x) with the tensors it makes and does not return freed when it returns (intermediates may
    /// not leave a region): the tape keeps what it saved, so compaction can free the full copies at once.
    /// </summary>
    static Tensor Scoped(Func<Tensor, Tensor> body, Tensor x)
    {
        using var scope = TensorScope.Begin();
        return scope.Keep(body(x));
    }

    /// <summary>Activation bytes the nodes from <paramref name="first"/> on hold, each block once (as the tape counts them).</summary>
    static long SavedBytesFrom(Tape tape, int first)
    {
        var seen = new HashSet<long>();
        return tape.Nodes.Skip(first).Sum(n => RegionTrace.NewBlockBytes(n.SavedTensors, seen));
    }

    /// <summary>Runs the body under a trace; returns the trace and the body's output (or throws, with the trace ended).</summary>
    static (RegionTrace Trace, Tensor Output) Traced(Tape tape, string name, Tensor x, PositionLayout layout, Func<Tensor, Tensor> body, RegionOptions options,
        HashSet<int>? keepWhole = null)
    {
        var trace = RegionTrace.Begin(tape, name, options, x, layout, keepWhole);
        Tensor y;
        try { y = Scoped(body, x); }
        catch
        {
            trace.ReleaseGathers();
            throw;
        }
        finally { trace.End(); }
        if (trace.LayoutOf(y) is null)
        {
            trace.ReleaseGathers();
            string why = ReferenceEquals(y, x) ? "it is the region input itself (the body did nothing)" :
                "it was not computed from the region input by ops that keep the region dimension (a reduction, a mixing op, Detach or a tensor from outside)";
            throw new SbpRegionException($"SBP region '{name}': the body's output {y.Shape} does not carry the region's dimension: {why}.");
        }
        return (trace, y);
    }

    /// <summary>
    /// Record indices of the nodes of a region (by name, input shape and axis) whose output gradient
    /// was dense when an eager guess last failed: eager compaction leaves them whole. Written only on a
    /// failed guess; a hint only: a wrong one costs a re-run or a late compaction, never a wrong gradient.
    /// </summary>
    static readonly System.Collections.Concurrent.ConcurrentDictionary<(string Name, Shape Shape, int Axis), HashSet<int>> KeepWholeHints = new();

    const int MaxHints = 4096;

    /// <summary>
    /// Sparse caching: nodes whose output gradient is zero at dropped positions switch to compact
    /// backward and their saved tensors are gathered to the kept positions: eagerly, as each op
    /// runs (<see cref="RegionOptions.EagerCompaction"/>), or when the body returns.
    /// </summary>
    static Tensor SparseCache(Tape tape, string name, Tensor x, PositionLayout layout, Func<Tensor, Tensor> body, RegionOptions options)
    {
        // Eager compaction may have to run the body twice: not inside a capture or replay of random masks.
        if (!options.EagerCompaction || RandomReplay.Active) return SparseCacheOnce(tape, name, x, layout, body, options, null).Output!;
        var key = (name, x.Shape, layout.Axis);
        var hint = KeepWholeHints.TryGetValue(key, out var known) ? known : [];
        using var capture = RandomReplay.Capture();
        var result = SparseCacheOnce(tape, name, x, layout, body, options, hint);
        if (result.Output is { } y) return y;
        // A guess failed (the nodes' gradient is dense and they need their full saved tensors): remember
        // them and run the body again with the same random masks, compacting when it returns. Hints are
        // small, but a process that sees ever new clip shapes should not collect them forever.
        if (KeepWholeHints.Count >= MaxHints) KeepWholeHints.Clear();
        KeepWholeHints[key] = result.KeepWhole!;
        using (RandomReplay.Replay([.. capture.Masks.Select(m => (m.Op, m.Mask))]))
            return SparseCacheOnce(tape, name, x, layout, body, options, null).Output!;
    }

    /// <summary>
    /// One traced run. Returns the region output, or (an eager guess failed) null after dropping what
    /// the run recorded, with the record indices that need their full saved tensors.
    /// </summary>
    static (Tensor? Output, HashSet<int>? KeepWhole) SparseCacheOnce(Tape tape, string name, Tensor x, PositionLayout layout, Func<Tensor, Tensor> body,
        RegionOptions options, HashSet<int>? keepWhole)
    {
        var (trace, y) = Traced(tape, name, x, layout, body, options, keepWhole);
        var output = trace.LayoutOf(y)!;
        var compact = trace.Analyze(y, output);
        if (trace.EagerGuessWrong)
        {
            var dense = Enumerable.Range(0, trace.Nodes.Count).Where(i => !trace.Nodes[i].IsCompact).ToHashSet();
            trace.ReleaseGathers();
            tape.DropNodes(trace.FirstNode);
            y.Dispose();
            return (null, dense);
        }
        trace.CompactRest();
        var result = OutputNode(tape, name, x, y, output, Scale(options, layout));
        tape.SealRegion(name, compact);
        tape.AddRegionReport(new RegionReport(name, RegionMode.SparseCache, layout.KeptCount, layout.Size, SavedBytesFrom(tape, trace.FirstNode), trace.FullSavedBytes));
        return (result, null);
    }

    /// <summary>
    /// The compact form of <paramref name="t"/>: its kept positions along the layout axis (the gather
    /// kernel). <paramref name="forLater"/>: a copy saved for backward (written past the caches where the backend can).
    /// </summary>
    internal static Tensor Gather(Tape tape, Tensor t, PositionLayout l, bool forLater = false)
    {
        using var label = OpLabel.Push("sbp.gather");
        var g = Tensor.Empty(l.CompactShape(t.Shape), t.Device, t.DType).DetachFromScope();
        if (forLater) g.Backend.IndexSelectForLater(t, l.Axis, tape.IndexTensor(l, t.Device), g);
        else g.Backend.IndexSelect(t, l.Axis, tape.IndexTensor(l, t.Device), g);
        return g;
    }

    /// <summary>
    /// The region boundary: y' = y (a view); backward gathers the incoming gradient at the kept
    /// positions (the mask), optionally times 1/keep, and hands it to the region as a compact gradient.
    /// </summary>
    static Tensor OutputNode(Tape tape, string name, Tensor input, Tensor y, PositionLayout output, float scale)
    {
        var result = y.View(y.Shape);
        var node = tape.AddNode("sbp.region_output", result, [y], [], ctx => [MaskedGrad(tape, ctx.Grad, output, scale)]);
        node.Region = name;
        node.SetInputLayouts([output]);
        // The view is the output now: the body's handle goes, or the caller's scope would hold the
        // full-size output until it ends even after the caller disposed the view.
        if (!ReferenceEquals(y, input)) y.Dispose();
        return result;
    }

    /// <summary>The gradient entering a region: the incoming one at the kept positions (the mask), times <paramref name="scale"/>.</summary>
    static Tensor MaskedGrad(Tape tape, Tensor grad, PositionLayout output, float scale)
    {
        var g = Gather(tape, grad, output);
        if (scale != 1f) g.Backend.Unary(Backends.UnaryOp.MulScalar, g, g, scale);
        return g;
    }

    /// <summary>The optional 1/keep rescale of a region's masked gradient.</summary>
    static float Scale(RegionOptions options, PositionLayout layout) => options.Rescale ? (float)layout.Size / layout.KeptCount : 1f;

    /// <summary>
    /// Recompute: the body runs once without recording, under a trace (to learn its layouts and
    /// rules and capture its random masks), so the forward holds no activations for backward. When every op is position-wise, only the input at
    /// kept positions (and the masks cut to kept positions) is saved and backward re-runs the body
    /// on the kept slice; otherwise (attention over the region dimension, a roll along it) the input
    /// is saved in full and backward re-runs the region with sparse caching.
    /// </summary>
    static Tensor Recompute(Tape tape, string name, Tensor x, PositionLayout layout, Func<Tensor, Tensor> body, RegionOptions options)
    {
        RegionTrace trace;
        Tensor y;
        using (var capture = RandomReplay.Capture())
        {
            using (Tape.NoGrad()) (trace, y) = Traced(tape, name, x, layout, body, options);
            long full = trace.FullSavedBytes;
            var result = y.Detach();
            if (!ReferenceEquals(y, x)) y.Dispose();
            if (!trace.SliceSafe)
                return CheckpointNode(tape, name, x, layout, body, options, result, capture, full,
                    $"re-run on the full input: {trace.NotSliceSafeBecause}");
            var output = trace.LayoutOf(y)!;

            var saved = new List<Tensor?>();
            var owned = new List<Tensor>();
            try
            {
                var xk = Gather(tape, x, layout, forLater: true);
                owned.Add(xk);
                saved.Add(xk);
                var masks = new List<(string Op, int Slot)>();
                foreach (var (op, mask, ml) in capture.Masks)
                {
                    var m = ml is null || ml.KeepsAll ? mask : Gather(tape, mask, ml, forLater: true);
                    if (!ReferenceEquals(m, mask)) owned.Add(m);
                    masks.Add((op, saved.Count));
                    saved.Add(m);
                }
                float scale = Scale(options, layout);
                var node = tape.AddNode("sbp.recompute", result, [x], [.. saved], ctx =>
                {
                    var slice = ctx.Saved(0);
                    using var g = MaskedGrad(tape, ctx.Grad, output, scale);
                    var replay = masks.Select(m => (m.Op, ctx.Saved(m.Slot))).ToList();
                    return [InputGrad(ctx, ReRun(name, slice, body, replay, output.CompactShape(ctx.Grad.Shape), g))];
                });
                node.Region = name;
                node.SetInputLayouts([layout]);
            }
            finally
            {
                foreach (var t in owned) t.Dispose();
            }
            tape.AddRegionReport(new RegionReport(name, RegionMode.Recompute, layout.KeptCount, layout.Size, SavedBytesFrom(tape, tape.Nodes.Count - 1), full,
                "input and random masks saved at kept positions; backward re-runs the body on the kept slice"));
            return result;
        }
    }

    /// <summary>
    /// Checkpointing: the body runs without recording (masks captured), the input is saved in full
    /// and backward re-runs the region (with sparse caching when there is a mask: SBP + checkpointing).
    /// </summary>
    static Tensor Checkpoint(Tape tape, string name, Tensor x, PositionLayout? layout, Func<Tensor, Tensor> body, RegionOptions options)
    {
        using var capture = RandomReplay.Capture();
        Tensor y;
        using (Tape.NoGrad()) y = Scoped(body, x);
        return CheckpointNode(tape, name, x, layout, body, options, y, capture, null, null);
    }

    static Tensor CheckpointNode(Tape tape, string name, Tensor x, PositionLayout? layout, Func<Tensor, Tensor> body, RegionOptions options,
        Tensor y, RandomReplay capture, long? full, string? note)
    {
        var saved = new List<Tensor?> { x };
        var slots = new List<(string Op, int Slot)>();
        foreach (var (op, mask, _) in capture.Masks)
        {
            slots.Add((op, saved.Count));
            saved.Add(mask);
        }
        var mode = options.Mode;
        var node = tape.AddNode(layout is null ? "checkpoint" : "sbp.checkpoint", y, [x], [.. saved], ctx =>
        {
            var input = ctx.Saved(0);
            var replay = slots.Select(m => (m.Op, ctx.Saved(m.Slot))).ToList();
            return [InputGrad(ctx, ReRun(name, input, layout is null ? body : h => SbpRegion.Run(name, h, layout.Axis, KeepMaskOf(layout), body, options with { Mode = RegionMode.SparseCache }),
                replay, ctx.Grad.Shape, ctx.Grad))];
        });
        node.Region = name;
        tape.AddRegionReport(new RegionReport(name, mode, layout?.KeptCount ?? x.Shape[0], layout?.Size ?? x.Shape[0], node.SavedBytes, full,
            note ?? "input saved in full; backward re-runs the region" + (layout is null ? "" : " with sparse caching")));
        return y;
    }

    /// <summary>
    /// The re-run's input gradient for the region input, or null (freed) when the input needs none:
    /// the re-run computes it anyway (its leaf requires grad) and the tape would not take it.
    /// </summary>
    static Tensor? InputGrad(BackwardContext ctx, Tensor? grad)
    {
        if (ctx.NeedsGrad(0)) return grad;
        grad?.Dispose();
        return null;
    }

    static KeepMask KeepMaskOf(PositionLayout l) => KeepMask.FromIndices(l.Size, l.KeptArray);

    /// <summary>
    /// Backward of a re-run region: runs <paramref name="body"/> on a copy of <paramref name="input"/>
    /// under a fresh tape with the captured masks replayed, backpropagates <paramref name="grad"/>
    /// from its output (parameters accumulate their gradients) and returns the input's gradient.
    /// </summary>
    static Tensor? ReRun(string name, Tensor input, Func<Tensor, Tensor> body, IReadOnlyList<(string Op, Tensor Mask)> replay, Shape outputShape, Tensor grad)
    {
        using var grads = Tape.EnableGrad();
        var leaf = input.Detach();
        leaf.RequiresGrad = true;
        using var sub = Tape.Begin();
        Tensor y;
        using (RandomReplay.Replay(replay)) y = body(leaf);
        if (y.Shape != outputShape)
            throw new SbpRegionException(
                $"SBP region '{name}': re-running the body in backward on an input {input.Shape} gave {y.Shape}, expected {outputShape}. " +
                "A region body must derive its sizes from its input's shape; use sparse-cache mode for bodies that cannot run on the kept slice.");
        return sub.BackwardCapture(y, grad, leaf);
    }

}
