using Sbp.Backends;
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
public sealed class Tape : IDisposable
{
    [ThreadStatic] static Tape? _current;
    [ThreadStatic] static int _noGradDepth;

    readonly Tape? _previous;
    readonly List<TapeNode> _nodes = [];
    readonly Dictionary<long, int> _heldBlocks = [];   // block id -> nodes holding it (counted blocks only)
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
        return new NoGradScope();
    }

    public readonly struct NoGradScope : IDisposable
    {
        public void Dispose() => _noGradDepth--;
    }

    public IReadOnlyList<TapeNode> Nodes => _nodes;
    public bool IsFreed => _state == State.Freed;

    /// <summary>Activation bytes held for backward now (each shared block counted once).</summary>
    public long SavedBytes { get; private set; }

    /// <summary>Most activation bytes held at once since the tape began.</summary>
    public long PeakSavedBytes { get; private set; }

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
    public static Tensor Record(string op, Tensor output, Tensor[] inputs, Tensor?[] save, BackwardRule backward)
    {
        if (!IsRecording(inputs)) return output;
        _current!.Add(op, output, inputs, save, backward);
        output.MarkRecorded(op);
        return output;
    }

    void Add(string op, Tensor output, Tensor[] inputs, Tensor?[] save, BackwardRule backward)
    {
        var saved = new Tensor?[save.Length];
        long nodeBytes = 0;
        var counted = new HashSet<long>();
        for (int i = 0; i < save.Length; i++)
        {
            if (save[i] is not { } s) continue;
            var block = s.Block;
            saved[i] = s.View(s.Shape, register: false);
            block.Pool.SetSavedHold(block, +1);
            if (block.BaseCategory != MemoryCategory.Temporary || !counted.Add(block.Id)) continue;
            nodeBytes += block.Bytes;
            _heldBlocks[block.Id] = _heldBlocks.GetValueOrDefault(block.Id) + 1;
            if (_heldBlocks[block.Id] == 1) SavedBytes += block.Bytes;
        }
        PeakSavedBytes = Math.Max(PeakSavedBytes, SavedBytes);
        _nodes.Add(new TapeNode(_nodes.Count, op, output, inputs, saved, nodeBytes, backward));
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
            if (_heldBlocks.TryGetValue(block.Id, out int n))
            {
                if (n == 1) { _heldBlocks.Remove(block.Id); SavedBytes -= block.Bytes; }
                else _heldBlocks[block.Id] = n - 1;
            }
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
                    if (grads.Remove(node.OutputId, out var g)) RunNode(node, g, grads);
                    Free(node);
                }
            }
        }
        finally
        {
            foreach (var g in grads.Values) g.Dispose();
            foreach (var node in _nodes) Free(node);
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
                var inGrads = node.Backward(new BackwardContext(node, grad));
                if (inGrads.Length != node.Inputs.Length)
                    throw new InvalidOperationException($"{node.Op}.backward returned {inGrads.Length} gradients for {node.Inputs.Length} inputs.");
                // Each accumulation takes ownership of one tensor object: a rule that returns the same
                // object twice (add(x, x)) or its incoming gradient hands on views for the repeats.
                var owned = new Tensor?[inGrads.Length];
                for (int j = 0; j < inGrads.Length; j++)
                {
                    if (inGrads[j] is not { } gj || !node.Inputs[j].RequiresGrad) continue;
                    if (gj.Shape != node.InputShapes[j])
                        throw new InvalidOperationException($"{node.Op}.backward: gradient of input {j} has shape {gj.Shape}, expected {node.InputShapes[j]}.");
                    owned[j] = handedOn.Add(gj) ? gj.DetachFromScope() : gj.View(gj.Shape, register: false);
                }
                for (int j = 0; j < owned.Length; j++)
                    if (owned[j] is { } o) Accumulate(node.Inputs[j], o, grads);
            }
        }
        finally
        {
            if (!handedOn.Contains(grad)) grad.Dispose();
        }
    }

    static void Accumulate(Tensor input, Tensor grad, Dictionary<long, Tensor> grads)
    {
        if (input.IsLeaf)
        {
            if (input.Grad is null)
            {
                var g = Tensor.Empty(input.Shape, input.Device, DType.Float32, MemoryCategory.Gradient).DetachFromScope();
                g.Backend.Copy(grad, g);
                input.Grad = g;
            }
            else input.Backend.Binary(BinaryOp.Add, input.Grad, grad, input.Grad);
            grad.Dispose();
            return;
        }
        if (!grads.TryGetValue(input.Id, out var existing))
        {
            grads[input.Id] = grad;
            return;
        }
        if (existing.Block.RefCount == 1)
            existing.Backend.Binary(BinaryOp.Add, existing, grad, existing);
        else
        {
            // Shared memory (a view handed to two inputs): add out of place.
            var sum = Tensor.Empty(existing.Shape, existing.Device).DetachFromScope();
            sum.Backend.Binary(BinaryOp.Add, existing, grad, sum);
            existing.Dispose();
            grads[input.Id] = sum;
        }
        grad.Dispose();
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
    }
}
