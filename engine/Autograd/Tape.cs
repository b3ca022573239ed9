using Sbp.Backends;
using Sbp.Memory;
using Sbp.Stochastic;
using Sbp.Tensors;

namespace Sbp.Autograd;

/// <summary>
/// The autograd record of one forward pass. While a tape is open (innermost on this thread),
/// every op with an input that requires grad appends a <see cref="TapeNode"/>; the tape owns the
/// tensors those nodes save, so the bytes held for backward are exact (<see cref="SavedBytes"/>,
/// per node <see cref="TapeNode.SavedBytes"/>). <see cref="Backward"/> runs the nodes in reverse,
/// sums gradients, accumulates them into leaves' <see cref="Tensor.Grad"/> and frees each node's
/// saved tensors as soon as it has run. One tape, one backward.
/// <code>
/// using var tape = Tape.Begin();
/// var loss = Ops.Mean(model(x));
/// tape.Backward(loss);
/// </code>
/// </summary>
public sealed partial class Tape : IDisposable
{
    [ThreadStatic] static Tape? _current;
    [ThreadStatic] static int _noGradDepth;

    readonly Tape? _previous;
    readonly List<TapeNode> _nodes = [];
    readonly Dictionary<long, int> _heldBlocks = [];   // block id -> nodes holding it (counted blocks only)
    readonly Dictionary<long, PositionLayout> _compact = [];   // tensor id -> layout of its compact gradient (SBP)
    readonly Dictionary<long, string> _sealed = [];   // compact tensors of closed regions -> region name
    readonly Dictionary<(PositionLayout, Device), Tensor> _indices = [];   // kept-position index buffers
    readonly List<RegionReport> _regions = [];
    long _captureId = -1;   // BackwardCapture: the input whose gradient is returned instead of accumulated
    Tensor? _captured;
    State _state = State.Recording;

    enum State { Recording, Freed }

    Tape(Tape? previous) => _previous = previous;

    /// <summary>Opens a tape on this thread; ops record into it until Backward or Dispose.</summary>
    public static Tape Begin() => _current = new Tape(_current);

    /// <summary>The tape ops record into now, if any.</summary>
    public static Tape? Current => _current;

    /// <summary>False inside <see cref="NoGrad"/>.</summary>
    public static bool IsGradEnabled => _noGradDepth == 0;

    /// <summary>Nothing is recorded until the returned scope ends (optimizer steps, evaluation).</summary>
    public static NoGradScope NoGrad()
    {
        _noGradDepth++;
        return new NoGradScope(true);
    }

    /// <summary>Ends a <see cref="NoGrad"/> scope; a default-constructed one does nothing.</summary>
    public readonly struct NoGradScope(bool opened) : IDisposable
    {
        public void Dispose()
        {
            if (opened) _noGradDepth--;
        }
    }

    /// <summary>Recording on again inside backward (a region re-run builds its own tape), until disposed.</summary>
    internal static GradScope EnableGrad()
    {
        var scope = new GradScope(_noGradDepth);
        _noGradDepth = 0;
        return scope;
    }

    internal readonly struct GradScope(int depth) : IDisposable
    {
        public void Dispose() => _noGradDepth = depth;
    }

    public IReadOnlyList<TapeNode> Nodes => _nodes;

    /// <summary>Set (before the forward pass) to time every recorded op's forward and backward; null: no timing (the default).</summary>
    public OpProfile? Profile { get; set; }
    public bool IsFreed => _state == State.Freed;

    /// <summary>Activation bytes held for backward now (each shared block counted once).</summary>
    public long SavedBytes { get; private set; }

    /// <summary>Most activation bytes held at once since the tape began.</summary>
    public long PeakSavedBytes { get; private set; }

    /// <summary>Bytes of the SBP index buffers (kept positions) held for backward; part of <see cref="SavedBytes"/>.</summary>
    public long IndexBytes { get; private set; }

    /// <summary>One report per SBP region recorded on this tape: kept count and saved bytes with and without SBP.</summary>
    public IReadOnlyList<RegionReport> Regions => _regions;

    /// <summary>Saved bytes summed per op name, largest first.</summary>
    public IReadOnlyList<(string Op, int Count, long Bytes)> SavedBytesByOp() =>
        _nodes.GroupBy(n => n.Op).Select(g => (g.Key, g.Count(), g.Sum(n => n.SavedBytes)))
            .OrderByDescending(r => r.Item3).ToList();

    /// <summary>True when an op over these inputs would be recorded now.</summary>
    public static bool IsRecording(ReadOnlySpan<Tensor> inputs)
    {
        if (_current is not { _state: State.Recording } || _noGradDepth > 0) return false;
        foreach (var t in inputs) if (t.RequiresGrad) return true;
        return false;
    }

    /// <summary>
    /// Records an op on the current tape if any input requires grad (else does nothing), saving
    /// <paramref name="save"/> for backward. Returns <paramref name="output"/>.
    /// </summary>
    /// <para>Inside an SBP region, <paramref name="sbp"/> says how the op treats the region's
    /// dimension (see <see cref="SbpRule"/>); an op without a rule is refused there.</para>
    public static Tensor Record(string op, Tensor output, Tensor[] inputs, Tensor?[] save, BackwardRule backward, SbpRule? sbp = null)
    {
        if (_anomaly) CheckForward(op, output, inputs);
        NodePlan? plan = null;
        var region = RegionTrace.Current;
        if (region is not null && region.Tape == _current)
        {
            try { plan = region.OnOp(op, output, inputs, save, sbp); }
            catch
            {
                output.Dispose();
                throw;
            }
        }
        if (!IsRecording(inputs))
        {
            GradProbe.OnNotRecorded(output, inputs);
            return output;
        }
        var node = _current!.Add(op, output, inputs, save, backward);
        _current.Profile?.AddForward(node);
        output.MarkRecorded(op);
        if (region is not null && region.Tape == _current)
        {
            node.Region = region.Name;
            region.OnRecorded(node, plan);
        }
        return output;
    }

    TapeNode Add(string op, Tensor output, Tensor[] inputs, Tensor?[] save, BackwardRule backward)
    {
        foreach (var input in inputs)
            if (_sealed.TryGetValue(input.Id, out var region))
                throw new SbpRegionException(
                    $"{op}: its input {input.Shape} was made inside SBP region '{region}' and holds only the kept positions' gradient; " +
                    "a tensor made inside a region may leave it only as the region's output (return it from the region body).");
        var saved = new Tensor?[save.Length];
        long nodeBytes = 0;
        var counted = new HashSet<long>();
        for (int i = 0; i < save.Length; i++)
        {
            if (save[i] is not { } s) continue;
            var block = s.Block;
            saved[i] = Hold(s);
            if (block.BaseCategory != MemoryCategory.Temporary || !counted.Add(block.Id)) continue;
            nodeBytes += block.Bytes;
            Retain(block);
        }
        PeakSavedBytes = Math.Max(PeakSavedBytes, SavedBytes);
        var node = new TapeNode(_nodes.Count, op, output, inputs, saved, nodeBytes, backward);
        _nodes.Add(node);
        return node;
    }

    /// <summary>Records an internal node (SBP region boundaries) without a region plan.</summary>
    internal TapeNode AddNode(string op, Tensor output, Tensor[] inputs, Tensor?[] save, BackwardRule backward)
    {
        var node = Add(op, output, inputs, save, backward);
        output.MarkRecorded(op);
        return node;
    }

    /// <summary>
    /// Replaces a node's saved tensor with <paramref name="replacement"/> (owned by the tape from
    /// now on; the old one is released), keeping the exact byte counts.
    /// </summary>
    internal void ReplaceSaved(TapeNode node, int slot, Tensor replacement)
    {
        var old = node.SavedTensors[slot] ?? throw new InvalidOperationException($"{node.Op}: saved slot {slot} is empty.");
        var held = Hold(replacement);
        long bytes = node.SavedBytes;
        var oldBlock = old.Block;
        bool oldCounted = oldBlock.BaseCategory == MemoryCategory.Temporary &&
            !node.SavedTensors.Where((t, i) => i != slot && t is not null && t.Block.Id == oldBlock.Id).Any();
        if (oldCounted)
        {
            Release(oldBlock);
            bytes -= oldBlock.Bytes;
        }
        var newBlock = held.Block;
        if (newBlock.BaseCategory == MemoryCategory.Temporary &&
            !node.SavedTensors.Where((t, i) => i != slot && t is not null && t.Block.Id == newBlock.Id).Any())
        {
            Retain(newBlock);
            bytes += newBlock.Bytes;
        }
        oldBlock.Pool.SetSavedHold(oldBlock, -1);
        old.Dispose();
        node.ReplaceSaved(slot, held, bytes);
        PeakSavedBytes = Math.Max(PeakSavedBytes, SavedBytes);
    }

    static Tensor Hold(Tensor t)
    {
        var view = t.View(t.Shape, register: false);
        view.Block.Pool.SetSavedHold(view.Block, +1);
        return view;
    }

    void Retain(MemoryBlock block)
    {
        _heldBlocks[block.Id] = _heldBlocks.GetValueOrDefault(block.Id) + 1;
        if (_heldBlocks[block.Id] == 1) SavedBytes += block.Bytes;
    }

    void Release(MemoryBlock block)
    {
        if (!_heldBlocks.TryGetValue(block.Id, out int n)) return;
        if (n == 1) { _heldBlocks.Remove(block.Id); SavedBytes -= block.Bytes; }
        else _heldBlocks[block.Id] = n - 1;
    }

    void Free(TapeNode node)
    {
        if (node.IsFreed) return;
        var seen = new HashSet<long>();
        foreach (var t in node.SavedTensors)
        {
            if (t is null) continue;
            var block = t.Block;
            if (block.BaseCategory != MemoryCategory.Temporary || !seen.Add(block.Id)) continue;
            Release(block);
        }
        node.FreeSaved();
    }

    /// <summary>
    /// Backpropagates from <paramref name="loss"/> (a one-element tensor, or any tensor with an
    /// explicit <paramref name="outputGrad"/> of its shape), accumulating into the Grad of every
    /// leaf that requires grad. Frees saved tensors as it goes; the tape cannot run again.
    /// </summary>
    public void Backward(Tensor loss, Tensor? outputGrad = null)
    {
        if (_state == State.Freed)
            throw new InvalidOperationException(
                $"Tape.Backward: this tape already ran backward (or was disposed) and freed the tensors its {_nodes.Count} ops saved. " +
                "Record the forward pass again under a new Tape: one tape holds one forward pass.");
        if (!loss.RequiresGrad || loss.IsLeaf || !_nodes.Any(n => n.OutputId == loss.Id))
            throw new InvalidOperationException(
                $"Tape.Backward: the loss {loss.Shape} was not produced by an op recorded on this tape " +
                "(no input required grad, the ops ran under NoGrad, or another tape was open). Set RequiresGrad on the parameters before the forward pass.");
        if (outputGrad is null && loss.Numel != 1)
            throw new ShapeMismatchException(
                $"Tape.Backward: the loss has shape {loss.Shape} ({loss.Numel} elements); reduce it to one element (Ops.Sum or Ops.Mean) or pass outputGrad of the same shape.");
        if (outputGrad is not null && outputGrad.Shape != loss.Shape)
            throw new ShapeMismatchException($"Tape.Backward: outputGrad has shape {outputGrad.Shape} but the loss has shape {loss.Shape}.");

        Close();
        var grads = new Dictionary<long, Tensor>();
        try
        {
            using (Tape.NoGrad())
            {
                Tensor seed;
                using (OpLabel.Push("backward.seed"))
                {
                    seed = Tensor.Empty(loss.Shape, loss.Device).DetachFromScope();
                    if (outputGrad is null) seed.Backend.Fill(seed, 1f);
                    else seed.Backend.Copy(outputGrad, seed);
                }
                grads[loss.Id] = seed;
                for (int i = _nodes.Count - 1; i >= 0; i--)
                {
                    var node = _nodes[i];
                    long t0 = Profile is null ? 0 : System.Diagnostics.Stopwatch.GetTimestamp();
                    if (grads.Remove(node.OutputId, out var g)) RunNode(node, g, grads);
                    Free(node);
                    Profile?.Add(node, OpProfile.Phase.Backward, t0);
                }
                if (_captureId >= 0 && grads.Count > 0)
                    throw new SbpRegionException(
                        $"An SBP region body used {grads.Count} tensor(s) from outside the region that need a gradient (not parameters): " +
                        "a region that is re-run in backward (recompute, checkpoint) may read only its input and module parameters. " +
                        "Pass the tensor in as the region input, or compute it inside the body.");
            }
        }
        finally
        {
            foreach (var g in grads.Values) g.Dispose();
            foreach (var node in _nodes) Free(node);
            FreeIndices();
        }
    }

    /// <summary>
    /// Backward of a region re-run (recompute, checkpoint): like <see cref="Backward"/> from
    /// <paramref name="output"/> with <paramref name="outputGrad"/> (compact or full, matching the
    /// output), but the gradient of <paramref name="input"/> is returned instead of stored in its Grad.
    /// </summary>
    internal Tensor? BackwardCapture(Tensor output, Tensor outputGrad, Tensor input)
    {
        _captureId = input.Id;
        try
        {
            Backward(output, outputGrad);
            return _captured;
        }
        catch
        {
            _captured?.Dispose();
            throw;
        }
        finally
        {
            _captureId = -1;
            _captured = null;
        }
    }

    void RunNode(TapeNode node, Tensor grad, Dictionary<long, Tensor> grads)
    {
        var handedOn = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
        try
        {
            using (OpLabel.Push(node.Op + ".backward"))
            using (var scope = TensorScope.Begin())
            {
                Tensor?[] inGrads;
                _inBackwardRule++;
                var context = new BackwardContext(node, grad, this);
                try { inGrads = node.Backward(context); }
                finally
                {
                    _inBackwardRule--;
                    context.DisposeGathered();
                }
                if (inGrads.Length != node.Inputs.Length)
                    throw new InvalidOperationException($"{node.Op}.backward returned {inGrads.Length} gradients for {node.Inputs.Length} inputs.");
                // Each accumulation takes ownership of one tensor object: a rule that returns the same
                // object twice (add(x, x)) or its incoming gradient hands on views for the repeats.
                // Checked before any is taken out of the scope, so a rejected gradient leaks nothing.
                for (int j = 0; j < inGrads.Length; j++)
                {
                    if (inGrads[j] is not { } gj || !node.Inputs[j].RequiresGrad) continue;
                    var expected = node.RuleInputShape(j);
                    if (gj.Shape != expected)
                        throw new InvalidOperationException($"{node.Op}.backward: gradient of input {j} has shape {gj.Shape}, expected {expected}.");
                    if (_anomaly) CheckBackward(node, j, gj, grad);
                }
                var owned = new Tensor?[inGrads.Length];
                for (int j = 0; j < inGrads.Length; j++)
                    if (inGrads[j] is { } gj && node.Inputs[j].RequiresGrad)
                        owned[j] = handedOn.Add(gj) ? gj.DetachFromScope() : gj.View(gj.Shape, register: false);
                try
                {
                    for (int j = 0; j < owned.Length; j++)
                    {
                        if (owned[j] is not { } o) continue;
                        owned[j] = null;
                        Accumulate(node.Inputs[j], o, node.InputLayouts?[j], grads);
                    }
                }
                catch
                {
                    // Out of memory mid-accumulation: the gradients not yet handed on are freed here.
                    foreach (var o in owned) o?.Dispose();
                    throw;
                }
            }
        }
        finally
        {
            if (!handedOn.Contains(grad)) grad.Dispose();
        }
    }

    /// <summary>
    /// Adds <paramref name="grad"/> to the gradient of <paramref name="input"/>. A compact gradient
    /// (<paramref name="layout"/> set) of a tensor whose gradient is dense is scattered: added at
    /// the kept positions of the dense gradient (SBP's scattered accumulation).
    /// </summary>
    void Accumulate(Tensor input, Tensor grad, PositionLayout? layout, Dictionary<long, Tensor> grads)
    {
        try { AccumulateOwned(input, grad, layout, grads); }
        catch
        {
            // A failed allocation (out of memory) must not leak the gradient unless it was already stored.
            if (!ReferenceEquals(grad, _captured) && !grads.Values.Contains(grad)) grad.Dispose();
            throw;
        }
    }

    void AccumulateOwned(Tensor input, Tensor grad, PositionLayout? layout, Dictionary<long, Tensor> grads)
    {
        bool scatter = layout is not null && !(_compact.TryGetValue(input.Id, out var own) && own.Equals(layout));
        if (input.Id == _captureId)
        {
            if (scatter) grad = Scattered(grad, layout!, input.Shape);
            if (_captured is null) _captured = grad;
            else
            {
                _captured.Backend.Binary(BinaryOp.Add, _captured, grad, _captured);
                grad.Dispose();
            }
            return;
        }
        if (input.IsLeaf)
        {
            if (input.Grad is null)
            {
                var g = (scatter ? Tensor.Zeros(input.Shape, input.Device, category: MemoryCategory.Gradient)
                                 : Tensor.Empty(input.Shape, input.Device, DType.Float32, MemoryCategory.Gradient)).DetachFromScope();
                try
                {
                    if (scatter) g.Backend.IndexAdd(g, layout!.Axis, IndexTensor(layout, g.Device), grad);
                    else g.Backend.Copy(grad, g);
                }
                catch
                {
                    g.Dispose();
                    throw;
                }
                input.Grad = g;
            }
            else if (scatter) input.Backend.IndexAdd(input.Grad, layout!.Axis, IndexTensor(layout, input.Device), grad);
            else input.Backend.Binary(BinaryOp.Add, input.Grad, grad, input.Grad);
            grad.Dispose();
            return;
        }
        if (!grads.TryGetValue(input.Id, out var existing))
        {
            grads[input.Id] = scatter ? Scattered(grad, layout!, input.Shape) : grad;
            return;
        }
        if (existing.Block.RefCount != 1)
        {
            // Shared memory (a view handed to two inputs): copy before adding in place.
            var copy = Tensor.Empty(existing.Shape, existing.Device).DetachFromScope();
            copy.Backend.Copy(existing, copy);
            existing.Dispose();
            grads[input.Id] = existing = copy;
        }
        if (scatter) existing.Backend.IndexAdd(existing, layout!.Axis, IndexTensor(layout, existing.Device), grad);
        else existing.Backend.Binary(BinaryOp.Add, existing, grad, existing);
        grad.Dispose();
    }

    /// <summary>A dense gradient of <paramref name="full"/> shape: zeros with the compact gradient at the kept positions.</summary>
    Tensor Scattered(Tensor compact, PositionLayout layout, Shape full)
    {
        Tensor dense;
        using (OpLabel.Push("sbp.scatter"))
            dense = Tensor.Zeros(full, compact.Device).DetachFromScope();
        try { dense.Backend.IndexAdd(dense, layout.Axis, IndexTensor(layout, dense.Device), compact); }
        catch
        {
            dense.Dispose();
            throw;
        }
        compact.Dispose();
        return dense;
    }

    void Close()
    {
        _state = State.Freed;
        if (_current == this) _current = _previous;
    }

    /// <summary>Frees every saved tensor; closes the tape if Backward did not.</summary>
    public void Dispose()
    {
        Close();
        foreach (var node in _nodes) Free(node);
        FreeIndices();
    }
}
