using Sbp.Memory;
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
    [ThreadStatic] static IRecordObserver? _observer;

    readonly Tape? _previous;
    readonly List<TapeNode> _nodes = [];
    readonly SavedTensorStore _store = new();
    State _state = State.Recording;

    enum State { Recording, Freed }

    Tape(Tape? previous) => _previous = previous;

    /// <summary>Opens a tape on this thread; ops record into it until Backward or Dispose.</summary>
    public static Tape Begin() => _current = new Tape(_current);

    /// <summary>The tape ops record into now, if any.</summary>
    public static Tape? Current => _current;

    /// <summary>The observer of the ops recorded now on this thread (an SBP region's trace), if any.</summary>
    internal static IRecordObserver? Observer
    {
        get => _observer;
        set => _observer = value;
    }

    /// <summary>What a feature keeps on this tape (SBP's region ledger), made by the feature on first use.</summary>
    internal ITapeExtension? Extension { get; set; }

    public IReadOnlyList<TapeNode> Nodes => _nodes;

    /// <summary>Set (before the forward pass) to time every recorded op's forward and backward; null: no timing (the default).</summary>
    public OpProfile? Profile { get; set; }

    /// <summary>Told during <see cref="Backward"/> when each leaf's gradient is final and after every op (data parallelism); null: none.</summary>
    public IGradientReadyObserver? GradientObserver { get; set; }
    public bool IsFreed => _state == State.Freed;

    /// <summary>Activation bytes held for backward now (each shared block counted once).</summary>
    public long SavedBytes => _store.Bytes;

    /// <summary>Most activation bytes held at once since the tape began.</summary>
    public long PeakSavedBytes => _store.PeakBytes;

    internal SavedTensorStore Store => _store;

    /// <summary>
    /// The activation bytes nodes hold now, by the type they are held in (Float32, BFloat16, Float16), each memory block
    /// once as <see cref="SavedBytes"/> counts them; SBP index buffers (the tape's IndexBytes) apart.
    /// </summary>
    public IReadOnlyList<(DType DType, long Bytes)> SavedBytesByType()
    {
        var seen = new HashSet<long>();
        var bytes = new SortedDictionary<DType, long>();
        foreach (var n in _nodes)
            foreach (var t in n.SavedTensors)
                if (t is not null && SavedTensorStore.Counts(t.Block) && seen.Add(t.Block.Id))
                    bytes[t.DType] = bytes.GetValueOrDefault(t.DType) + t.Block.Bytes;
        return [.. bytes.Select(e => (e.Key, e.Value))];
    }

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
    /// <para><paramref name="rule"/> is what the op declares for an observer of the recording: inside an SBP
    /// region, how the op treats the region's dimension (<c>Sbp.Stochastic.SbpRule</c>).</para>
    /// </summary>
    public static Tensor Record(string op, Tensor output, Tensor[] inputs, Tensor?[] save, BackwardRule backward, IOpRule? rule = null)
    {
        if (_anomaly) CheckForward(op, output, inputs);
        object? plan = null;
        var observer = _observer is { } o && o.Tape == _current ? o : null;
        if (observer is not null)
        {
            try { plan = observer.OnOp(op, output, inputs, save, rule); }
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
        if (observer is not null)
        {
            node.Region = observer.Name;
            node.PackAs = _saveAs;
            observer.OnRecorded(node, plan);
        }
        else if (_saveAs is { } dtype) _current._store.Pack(node, dtype);   // a region's nodes are packed when it ends
        else _current._store.PackKnown(node);
        return output;
    }

    TapeNode Add(string op, Tensor output, Tensor[] inputs, Tensor?[] save, BackwardRule backward)
    {
        if (Extension is { } extension)
            foreach (var input in inputs) extension.CheckInput(op, input);
        var (held, bytes) = _store.HoldAll(save);
        var node = new TapeNode(_nodes.Count, op, output, inputs, held, bytes, backward);
        _nodes.Add(node);
        return node;
    }

    /// <summary>Records an internal node (SBP region boundaries) without an observer's plan.</summary>
    internal TapeNode AddNode(string op, Tensor output, Tensor[] inputs, Tensor?[] save, BackwardRule backward)
    {
        var node = Add(op, output, inputs, save, backward);
        output.MarkRecorded(op);
        return node;
    }

    /// <summary>Replaces a node's saved tensor (owned by the tape from now on; the old one is released), keeping the exact byte counts.</summary>
    internal void ReplaceSaved(TapeNode node, int slot, Tensor replacement) => _store.Replace(node, slot, replacement);

    /// <summary>How many times nodes were dropped (<see cref="DropNodes"/>): a tensor recorded before may have lost its node.</summary>
    internal int Drops { get; private set; }

    /// <summary>Frees and removes the nodes recorded from <paramref name="from"/> on (a region that failed or runs again).</summary>
    internal void DropNodes(int from)
    {
        if (from < _nodes.Count) Drops++;
        for (int i = _nodes.Count - 1; i >= from; i--)
        {
            _store.Free(_nodes[i]);
            _nodes.RemoveAt(i);
        }
    }

    /// <summary>
    /// Backpropagates from <paramref name="loss"/> (a one-element tensor, or any tensor with an
    /// explicit <paramref name="outputGrad"/> of its shape), accumulating into the Grad of every
    /// leaf that requires grad. Frees saved tensors as it goes; the tape cannot run again.
    /// </summary>
    public void Backward(Tensor loss, Tensor? outputGrad = null)
    {
        using var grads = Run(loss, outputGrad, -1);
    }

    /// <summary>
    /// Backward of a region re-run (recompute, checkpoint): like <see cref="Backward"/> from
    /// <paramref name="output"/> with <paramref name="outputGrad"/> (compact or full, matching the
    /// output), but the gradient of <paramref name="input"/> is returned (owned by the caller) instead of
    /// stored, with the number of other non-leaf tensors that were left with a gradient.
    /// </summary>
    internal (Tensor? Gradient, int Unused) BackwardCapture(Tensor output, Tensor outputGrad, Tensor input)
    {
        using var grads = Run(output, outputGrad, input.Id);
        return (grads.TakeCaptured(), grads.Pending);
    }

    GradientAccumulator Run(Tensor loss, Tensor? outputGrad, long captureId)
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
        var grads = new GradientAccumulator(this, captureId);
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
                grads.Seed(loss, seed);
                var readiness = captureId < 0 && GradientObserver is { } observer ? new LeafReadiness(_nodes, observer) : null;
                for (int i = _nodes.Count - 1; i >= 0; i--)
                {
                    var node = _nodes[i];
                    long t0 = Profile?.Now() ?? 0;
                    if (grads.TryTake(node.OutputId, out var g)) RunNode(node, g, grads);
                    _store.Free(node);
                    Profile?.Add(node, OpProfile.Phase.Backward, t0);
                    readiness?.Done(node, i);
                }
            }
            return grads;
        }
        catch
        {
            grads.Dispose();
            throw;
        }
        finally
        {
            foreach (var node in _nodes) _store.Free(node);
            Extension?.Release();
        }
    }

    void RunNode(TapeNode node, Tensor grad, GradientAccumulator grads)
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
                    var gj = inGrads[j];
                    if (gj is null || !node.Inputs[j].RequiresGrad) continue;
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
                        var o = owned[j];
                        if (o is null) continue;
                        owned[j] = null;
                        grads.Add(node.Inputs[j], o, node.InputForms?[j]);
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

    void Close()
    {
        _state = State.Freed;
        if (_current == this) _current = _previous;
    }

    /// <summary>Frees every saved tensor; closes the tape if Backward did not.</summary>
    public void Dispose()
    {
        Close();
        foreach (var node in _nodes) _store.Free(node);
        Extension?.Release();
    }
}
