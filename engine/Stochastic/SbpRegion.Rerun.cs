using Sbp.Autograd;
using Sbp.Tensors;

namespace Sbp.Stochastic;

// The region modes that re-run the body in backward: recompute (the input saved at kept positions when
// every op allows it) and checkpointing (the input saved in full; with a mask, SBP + checkpointing).
public static partial class SbpRegion
{
    /// <summary>
    /// The body runs once without recording, under a gradient probe and (with a mask) a trace: the probe
    /// makes every op save what it would save recording, so the trace counts full backprop's bytes as
    /// sparse caching does, and tells whether the body would record at all; the trace learns the body's
    /// layouts and rules (an op the region cannot run is refused here, in the forward pass) and random
    /// masks are captured. Recompute (<paramref name="sliceAllowed"/>), when every op is position-wise:
    /// only the input at kept positions (and the masks cut to them) is saved and backward re-runs the body
    /// on the kept slice. Otherwise (attention over the region dimension, a roll or pad along it, or
    /// checkpointing) the input is saved in full and backward re-runs the region, with sparse caching when
    /// there is a mask. <paramref name="size"/>: the region dimension's size (all kept without a mask).
    /// </summary>
    static Tensor Rerun(Tape tape, string name, Tensor x, int size, PositionLayout? request, Func<Tensor, Tensor> body, RegionOptions options, bool sliceAllowed)
    {
        using var capture = RandomReplay.Capture();
        Tensor result;
        RegionTrace? trace = null;
        PositionLayout? input = request;
        bool wouldRecord;
        using (var probe = Tape.Probe())
        {
            Tensor y;
            if (request is null) y = Scoped(body, x);
            else (trace, input, y) = TraceForRerun(tape, name, x, request, body, options, capture);
            wouldRecord = probe.WouldRecord;
            result = y.Detach();
            DisposeOutput(y, x);
        }
        try
        {
            int kept = request?.KeptCount ?? size;
            if (!wouldRecord)
            {
                RegionLedger.Of(tape).AddReport(new RegionReport(name, options.Mode, kept, size, 0, 0, "nothing in the body requires grad"));
                return result;
            }
            if (request is null || trace is null) return CheckpointNode(tape, name, x, size, null, null, body, options, result, capture, null, null);
            long full = trace.FullSavedBytes;
            if (!sliceAllowed || !trace.SliceSafe || !input!.Equals(request))
                return CheckpointNode(tape, name, x, size, input, request, body, options, result, capture, full,
                    sliceAllowed ? $"re-run on the full input: {trace.NotSliceSafeBecause ?? "the body rolls the dimension"}" : null);
            SliceNode(tape, name, x, request, body, options, result, capture);
            RegionLedger.Of(tape).AddReport(new RegionReport(name, RegionMode.Recompute, request.KeptCount, request.Size, SavedBytesFrom(tape, tape.Nodes.Count - 1), full,
                "input and random masks saved at kept positions; backward re-runs the body on the kept slice"));
            return result;
        }
        catch
        {
            result.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The traced first forward of a re-run region: the trace, the input's kept positions and the body's
    /// output. A body that returns its positions rolled is traced once more (same random masks) with the
    /// kept set rolled back at its input, so that its output keeps <paramref name="request"/>.
    /// </summary>
    static (RegionTrace Trace, PositionLayout Input, Tensor Output) TraceForRerun(Tape tape, string name, Tensor x, PositionLayout request,
        Func<Tensor, Tensor> body, RegionOptions options, RandomReplay capture)
    {
        var key = new RegionHints.Key(name, x.Shape, request.Axis);
        var input = request.Rolled(-RegionHints.Get(key).Rotation);
        var (trace, y) = Traced(tape, name, x, input, body, options);
        var output = trace.LayoutOf(y)!;
        if (output.Kept.SequenceEqual(request.Kept)) return (trace, input, y);
        // The values do not depend on the layouts: keep this run's output and learn the layouts again.
        try
        {
            int rotation = Rotation(input, output) ?? throw Moved(name, request, input, output);
            input = request.Rolled(-rotation);
            RegionTrace again;
            Tensor y2;
            using (RandomReplay.Replay([.. capture.Masks.Select(m => (m.Op, m.Mask))])) (again, y2) = Traced(tape, name, x, input, body, options);
            var output2 = again.LayoutOf(y2)!;
            DisposeOutput(y2, x);
            if (!output2.Kept.SequenceEqual(request.Kept)) throw Moved(name, request, input, output2);
            RegionHints.SetRotation(key, rotation);
            return (again, input, y);
        }
        catch
        {
            DisposeOutput(y, x);
            throw;
        }
    }

    /// <summary>Recompute on the kept slice: saves the input (and random masks) at kept positions; backward re-runs the body on them.</summary>
    static void SliceNode(Tape tape, string name, Tensor x, PositionLayout layout, Func<Tensor, Tensor> body, RegionOptions options, Tensor result, RandomReplay capture)
    {
        var saved = new List<Tensor?>();
        var owned = new List<Tensor>();
        try
        {
            var xk = Gather(tape, x, layout, forLater: true);
            owned.Add(xk);
            saved.Add(xk);
            var masks = new List<(string Op, int Slot)>();
            int slot = 1; // saved: the input's kept positions, then one mask per random op
            foreach (var (op, mask, ml) in capture.Masks)
            {
                var m = ml is null || ml.KeepsAll ? mask : Gather(tape, mask, ml, forLater: true);
                if (!ReferenceEquals(m, mask)) owned.Add(m);
                masks.Add((op, slot++));
                saved.Add(m);
            }
            float scale = Scale(options, layout);
            body = Autocast.Keeping(body);
            var node = tape.AddNode("sbp.recompute", result, [x], [.. saved], ctx =>
            {
                var slice = ctx.Saved(0);
                using var g = MaskedGrad(tape, ctx.Grad, layout, scale);
                var replay = masks.Select(m => (m.Op, ctx.Saved(m.Slot))).ToList();
                return [InputGrad(ctx, ReRun(name, slice, body, replay, layout.CompactShape(ctx.Grad.Shape), g))];
            });
            node.Region = name;
            node.RunsSubTape = true;
            node.SetInputForms([layout]);
        }
        finally
        {
            foreach (var t in owned) t.Dispose();
        }
    }

    /// <summary>
    /// Checkpointing: the input is saved in full (with the captured random masks) and backward re-runs
    /// the region: the body alone, or (with a mask) the body as a sparse-cache region whose input keeps
    /// <paramref name="input"/> and whose output keeps <paramref name="request"/>: SBP + checkpointing.
    /// </summary>
    static Tensor CheckpointNode(Tape tape, string name, Tensor x, int size, PositionLayout? input, PositionLayout? request, Func<Tensor, Tensor> body, RegionOptions options,
        Tensor y, RandomReplay capture, long? full, string? note)
    {
        var saved = new List<Tensor?> { x };
        var slots = new List<(string Op, int Slot)>();
        int slot = 1; // saved: the input, then one mask per random op
        foreach (var (op, mask, _) in capture.Masks)
        {
            slots.Add((op, slot++));
            saved.Add(mask);
        }
        var sparse = options with { Mode = RegionMode.SparseCache };
        Func<Tensor, Tensor> rerun = request is null ? body : h => SparseCache(Tape.Current!, name, h, request, input, body, sparse);
        rerun = Autocast.Keeping(rerun);
        var node = tape.AddNode(request is null ? "checkpoint" : "sbp.checkpoint", y, [x], [.. saved], ctx =>
        {
            var replay = slots.Select(m => (m.Op, ctx.Saved(m.Slot))).ToList();
            return [InputGrad(ctx, ReRun(name, ctx.Saved(0), rerun, replay, ctx.Grad.Shape, ctx.Grad))];
        });
        node.Region = name;
        node.RunsSubTape = true;
        RegionLedger.Of(tape).AddReport(new RegionReport(name, options.Mode, request?.KeptCount ?? size, size, node.SavedBytes, full,
            note ?? "input saved in full; backward re-runs the region" + (request is null ? "" : " with sparse caching")));
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
        var (gradient, unused) = sub.BackwardCapture(y, grad, leaf);
        if (unused > 0)
        {
            gradient?.Dispose();
            throw new SbpRegionException(
                $"SBP region '{name}': its body used {unused} tensor(s) from outside the region that need a gradient (not parameters): " +
                "a region that is re-run in backward (recompute, checkpoint) may read only its input and module parameters. " +
                "Pass the tensor in as the region input, or compute it inside the body.");
        }
        return gradient;
    }
}
