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
/// still carries the region dimension with its size; tensors made inside may leave only as the output.
/// The mask applies to the output's positions: a body that returns its positions rolled along the
/// dimension is run with the kept set rolled back at its input, and one that moves them otherwise
/// is refused. When anything fails inside a region, the tape and the pool are left as they were before it.
/// </summary>
public static partial class SbpRegion
{
    /// <summary>
    /// y = body(x) as one region. <paramref name="mask"/> (size x.Shape[dim]) picks the kept output
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
        if (RegionTrace.Current is { } outer)   // also while a re-run region's first forward runs without recording
            throw new SbpRegionException($"SBP region '{name}' was started inside region '{outer.Name}'; regions do not nest. End the outer region first.");
        var tape = Tape.Current;
        if (tape is null || tape.IsFreed || !Tape.IsGradEnabled) return body(x);

        bool keepsAll = mask is null || mask.KeptCount == mask.Size;
        var request = mask is null ? null : new PositionLayout(d, mask.Size, mask.Kept.ToArray());
        var ledger = RegionLedger.Of(tape);
        var mark = ledger.Here();
        int firstNode = tape.Nodes.Count;
        try
        {
            var y = options.Mode switch
            {
                RegionMode.Oracle => Oracle(x, d, mask, body, options),
                RegionMode.SparseCache when keepsAll => Plain(tape, name, x, body, x.Shape[d]),
                RegionMode.SparseCache => SparseCache(tape, name, x, request!, null, body, options),
                RegionMode.Recompute when !keepsAll => Rerun(tape, name, x, x.Shape[d], request, body, options, sliceAllowed: true),
                _ => Rerun(tape, name, x, x.Shape[d], keepsAll ? null : request, body, options, sliceAllowed: false),
            };
            // with Tape.SaveActivationsAs (around the region, or around some of its ops, as autocast's attention): the region's
            // saved tensors (compact where they are) packed now that it has ended
            if (Tape.SavedActivationType is { } || tape.PacksFrom(firstNode))
            {
                long before = SavedBytesFrom(tape, firstNode);
                tape.PackSavedFrom(firstNode, Tape.SavedActivationType);
                ledger.ShrinkReportsSince(mark, before - SavedBytesFrom(tape, firstNode));
            }
            return y;
        }
        catch
        {
            // A refused op, out of memory, an anomaly: drop what the region recorded (its saved tensors,
            // index buffers and reports), so the caller can go on with the tape and pool as before.
            ledger.RollBack(mark);
            throw;
        }
    }

    /// <summary>The test oracle: ordinary backprop of the body with GradMask(mask) (times 1/keep with Rescale) at its output.</summary>
    static Tensor Oracle(Tensor x, int d, KeepMask? mask, Func<Tensor, Tensor> body, RegionOptions options)
    {
        var y = Scoped(body, x);
        if (mask is null || mask.KeptCount == mask.Size) return y;   // keep 1: no mask and nothing to rescale
        using (y) return Ops.GradMask(y, d, mask, options.Rescale ? (float)(1.0 / mask.KeepRatio) : 1f);
    }

    /// <summary>Keep = 1: ordinary backprop, reported with its saved bytes.</summary>
    static Tensor Plain(Tape tape, string name, Tensor x, Func<Tensor, Tensor> body, int size)
    {
        int first = tape.Nodes.Count;
        var y = Scoped(body, x);
        long bytes = SavedBytesFrom(tape, first);
        RegionLedger.Of(tape).AddReport(new RegionReport(name, RegionMode.SparseCache, size, size, bytes, bytes));
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
        return tape.Nodes.Skip(first).Sum(n => SavedTensorStore.CountedBytes(n.SavedTensors, seen));
    }

    /// <summary>Frees the body's output unless it is the region input itself.</summary>
    static void DisposeOutput(Tensor y, Tensor x)
    {
        if (!ReferenceEquals(y, x)) y.Dispose();
    }

    /// <summary>Runs the body under a trace; returns the trace and the body's output (or throws, with the trace ended and its gathers freed).</summary>
    static (RegionTrace Trace, Tensor Output) Traced(Tape tape, string name, Tensor x, PositionLayout layout, Func<Tensor, Tensor> body, RegionOptions options,
        IReadOnlyList<EagerHint>? hints = null)
    {
        var trace = RegionTrace.Begin(tape, name, options, x, layout, hints);
        Tensor y;
        try { y = Scoped(body, x); }
        catch
        {
            trace.ReleaseGathers();
            throw;
        }
        finally { trace.End(); }
        if (trace.LayoutOf(y) is { } output && output.Size == layout.Size) return (trace, y);
        trace.ReleaseGathers();
        DisposeOutput(y, x);
        string why = trace.LayoutOf(y) is { } o
            ? $"it has {o.Size} positions along the region's dimension (axis {o.Axis}) where the input and the mask have {layout.Size}; " +
              "the mask applies to the output's positions, so the body must return as many (crop what it padded)"
            : "it was not computed from the region input by ops that keep the region dimension (a reduction, a mixing op, Detach or a tensor from outside)";
        throw new SbpRegionException($"SBP region '{name}': the body's output {y.Shape} does not carry the region's dimension: {why}.");
    }

    /// <summary>
    /// Sparse caching: nodes whose output gradient is zero at dropped positions switch to compact
    /// backward and their saved tensors are gathered to the kept positions: eagerly, as each op
    /// runs (<see cref="RegionOptions.EagerCompaction"/>), or when the body returns.
    /// <paramref name="request"/>: the kept output positions (on the input's axis);
    /// <paramref name="known"/>: the input's kept positions when the caller knows them (a re-run in backward).
    /// </summary>
    static Tensor SparseCache(Tape tape, string name, Tensor x, PositionLayout request, PositionLayout? known, Func<Tensor, Tensor> body, RegionOptions options)
    {
        var key = new RegionHints.Key(name, x.Shape, request.Axis);
        var learned = RegionHints.Get(key);
        var input = known ?? request.Rolled(-learned.Rotation);
        // A second run needs the same random masks: not inside a capture or replay of them (a re-run in backward).
        if (RandomReplay.Active)
            return SparseCacheOnce(tape, name, x, input, request, body, options, null).Output ?? throw Moved(name, request, input, null);
        using var capture = RandomReplay.Capture();
        var first = SparseCacheOnce(tape, name, x, input, request, body, options, options.EagerCompaction ? learned.Eager : null);
        if (first.Output is { } y) return y;
        // The first run was dropped: the body moved the kept positions (run again with them rolled back
        // at the input) or an eager guess failed (remember the body's dense nodes, compact at the end).
        if (first.MovedTo is { } moved)
        {
            int rotation = Rotation(input, moved) ?? throw Moved(name, request, input, moved);
            RegionHints.SetRotation(key, rotation);
            input = request.Rolled(-rotation);
        }
        if (first.Dense is { } dense) RegionHints.AddEager(key, dense);
        using (RandomReplay.Replay([.. capture.Masks.Select(m => (m.Op, m.Mask))]))
        {
            var second = SparseCacheOnce(tape, name, x, input, request, body, options, null);
            return second.Output ?? throw Moved(name, request, input, second.MovedTo);
        }
    }

    /// <summary>A traced run's outcome: the region output, or (the run was dropped) where the kept positions came out, or the hint an eager guess needed.</summary>
    readonly record struct Attempt(Tensor? Output, PositionLayout? MovedTo = null, EagerHint? Dense = null);

    /// <summary>
    /// One traced run with the input's kept positions <paramref name="input"/>. Returns the region
    /// output; or, after dropping what the run recorded, where the body put the kept positions (when
    /// that is not <paramref name="request"/>) or the nodes whose eager compaction guessed wrong.
    /// </summary>
    static Attempt SparseCacheOnce(Tape tape, string name, Tensor x, PositionLayout input, PositionLayout request, Func<Tensor, Tensor> body,
        RegionOptions options, IReadOnlyList<EagerHint>? hints)
    {
        var ledger = RegionLedger.Of(tape);
        var mark = ledger.Here();
        var (trace, y) = Traced(tape, name, x, input, body, options, hints);
        bool handedOn = false;
        try
        {
            var output = trace.LayoutOf(y)!;
            if (!y.RequiresGrad)
            {
                // Nothing in the body requires grad (frozen weights, an input without grad): no node, nothing held.
                handedOn = true;
                trace.ReleaseGathers();
                ledger.RollBack(mark);
                ledger.AddReport(new RegionReport(name, RegionMode.SparseCache, request.KeptCount, request.Size, 0, 0, "nothing in the body requires grad"));
                return new(y);
            }
            if (!output.Kept.SequenceEqual(request.Kept)) return Dropped(new(null, MovedTo: output));
            var compact = trace.Analyze(y, output);
            if (trace.EagerGuessWrong) return Dropped(new(null, Dense: trace.DenseHint()));
            trace.CompactRest();
            var result = OutputNode(tape, name, x, y, output, Scale(options, request));
            handedOn = true;
            ledger.SealRegion(name, compact);
            ledger.AddReport(new RegionReport(name, RegionMode.SparseCache, request.KeptCount, request.Size, SavedBytesFrom(tape, trace.FirstNode), trace.FullSavedBytes,
                input.Equals(request) ? null : $"the body rolls the dimension; kept input positions [{string.Join(", ", input.Kept.ToArray().Take(8))}]"));
            return new(result);
        }
        finally
        {
            if (!handedOn)
            {
                trace.ReleaseGathers();
                DisposeOutput(y, x);
            }
        }

        Attempt Dropped(Attempt attempt)
        {
            // Nodes, saved tensors and the index buffers of layouts the next run may not use.
            trace.ReleaseGathers();
            ledger.RollBack(mark);
            return attempt;
        }
    }

    /// <summary>The shift s (0 &lt;= s &lt; size) with <paramref name="from"/> rolled by s keeping <paramref name="to"/>'s positions, or null.</summary>
    static int? Rotation(PositionLayout from, PositionLayout to)
    {
        for (int s = 0; s < from.Size; s++)
            if (from.Rolled(s).Kept.SequenceEqual(to.Kept)) return s;
        return null;
    }

    /// <summary>The refusal of a body that moves its positions other than by a roll.</summary>
    static SbpRegionException Moved(string name, PositionLayout request, PositionLayout input, PositionLayout? output) =>
        new($"SBP region '{name}': the body moves positions along the region's dimension: the kept input positions [{Positions(input)}] come out at " +
            $"[{(output is null ? "?" : Positions(output))}], not at the requested [{Positions(request)}], and the movement is not a roll that the region can undo. " +
            "The mask applies to the output's positions (docs/SBP.md): return each position where it came in (undo the movement inside the body), " +
            "or end the region before the op that moves them.");

    static string Positions(PositionLayout l) => string.Join(", ", l.Kept.ToArray().Take(12)) + (l.KeptCount > 12 ? ", ..." : "");

    /// <summary>
    /// The compact form of <paramref name="t"/>: its kept positions along the layout axis (the gather
    /// kernel). <paramref name="forLater"/>: a copy saved for backward (written past the caches where the backend can).
    /// </summary>
    internal static Tensor Gather(Tape tape, Tensor t, PositionLayout l, bool forLater = false)
    {
        using var label = OpLabel.Push("sbp.gather");
        var g = Tensor.Empty(l.CompactShape(t.Shape), t.Device, t.DType).DetachFromScope();
        try
        {
            if (t.DType.Is16Bit())
            {
                Gather16(tape, t, l, forLater, g);
                return g;
            }
            if (forLater) g.Backend.IndexSelectForLater(t, l.Axis, RegionLedger.Of(tape).IndexTensor(l, t.Device), g);
            else g.Backend.IndexSelect(t, l.Axis, RegionLedger.Of(tape).IndexTensor(l, t.Device), g);
        }
        catch
        {
            g.Dispose();
            throw;
        }
        return g;
    }

    /// <summary>
    /// The gather of a 16-bit tensor into <paramref name="g"/>. Rows of an even number of elements (the elements after the
    /// region's axis) move as Float32 pairs; odd rows (attention probabilities over 7x7 windows or a ViT's 1 + T H W tokens,
    /// the region's axis last) as 2-byte elements (the backends' 16-bit gather).
    /// </summary>
    static void Gather16(Tape tape, Tensor t, PositionLayout l, bool forLater, Tensor g)
    {
        long outer = 1, inner = 1;
        for (int i = 0; i < l.Axis; i++) outer *= t.Shape[i];
        for (int i = l.Axis + 1; i < t.Rank; i++) inner *= t.Shape[i];
        var index = RegionLedger.Of(tape).IndexTensor(l, t.Device);
        var backend = g.Backend;
        if (inner % 2 == 0)
        {
            using var from = Tensor.OverBlock(t.Block, new Shape(checked((int)outer), t.Shape[l.Axis], checked((int)(inner / 2))), DType.Float32, t.Device);
            using var to = Tensor.OverBlock(g.Block, new Shape(checked((int)outer), g.Shape[l.Axis], checked((int)(inner / 2))), DType.Float32, g.Device);
            if (forLater) backend.IndexSelectForLater(from, 1, index, to);
            else backend.IndexSelect(from, 1, index, to);
            return;
        }
        backend.IndexSelect(t, l.Axis, index, g);
    }

    /// <summary>
    /// The region boundary: y' = y (a view); backward gathers the incoming gradient at the kept
    /// positions (the mask), optionally times 1/keep, and hands it to the region as a compact gradient.
    /// </summary>
    static Tensor OutputNode(Tape tape, string name, Tensor input, Tensor y, PositionLayout output, float scale)
    {
        var result = y.View(y.Shape);
        try
        {
            var node = tape.AddNode("sbp.region_output", result, [y], [], ctx => [MaskedGrad(tape, ctx.Grad, output, scale)]);
            node.Region = name;
            node.SetInputForms([output]);
        }
        catch
        {
            result.Dispose();
            throw;
        }
        // The view is the output now: the body's handle goes, or the caller's scope would hold the
        // full-size output until it ends even after the caller disposed the view.
        DisposeOutput(y, input);
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
}
