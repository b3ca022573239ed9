using Sbp.Memory;
using Sbp.Tensors;

namespace Sbp.Autograd;

/// <summary>
/// What a node's backward rule sees: the gradient of its output, the tensors it saved, the shapes
/// of its inputs and which inputs need a gradient. It returns one gradient per input (null where
/// none is needed). Rules must read activations only through <see cref="Saved"/>: an op's inputs
/// may have been disposed by the time backward runs.
/// </summary>
public sealed class BackwardContext
{
    readonly TapeNode _node;
    readonly Tape _tape;
    Tensor?[]? _gathered;
    Tensor?[]? _gatheredHeld;
    Tensor?[]? _widened;

    internal BackwardContext(TapeNode node, Tensor grad, Tape tape)
    {
        _node = node;
        _tape = tape;
        Grad = grad;
    }

    /// <summary>Gradient of the loss with respect to the node's output.</summary>
    public Tensor Grad { get; }

    /// <summary>Saved tensor <paramref name="index"/> in Float32 (one held in 16 bits is widened, once per node).</summary>
    public Tensor Saved(int index) => Get(index, widen: true);

    /// <summary>
    /// Saved tensor <paramref name="index"/> in the type it is held in: a GEMM op's 16-bit input under autocast, read as
    /// it is by the 16-bit GEMMs of its backward.
    /// </summary>
    public Tensor SavedAsHeld(int index) => Get(index, widen: false);

    Tensor Get(int index, bool widen)
    {
        var t = _node.SavedTensors[index] ?? throw new InvalidOperationException($"{_node.Op}.backward: saved tensor {index} was not saved (its gradient was not needed at record time).");
        // Saved as 16 bits (Tape.SaveActivationsAs, autocast): widened for the rule, once per node.
        if (widen && t.DType.Is16Bit())
        {
            _widened ??= new Tensor?[_node.SavedTensors.Length];
            t = _widened[index] ??= Ops.CastTo(OpLabel.Current, t, DType.Float32).DetachFromScope();
        }
        // A compact node that shares a tensor kept whole by another node of its SBP region gathers
        // the kept positions now instead of holding a second, compact copy since the forward pass.
        if (_node.DeferredGathers?[index] is not { } form) return t;
        var gathered = widen ? _gathered ??= new Tensor?[_node.SavedTensors.Length] : _gatheredHeld ??= new Tensor?[_node.SavedTensors.Length];
        return gathered[index] ??= form.Gather(_tape, t);
    }

    /// <summary>Whether saved tensor <paramref name="index"/> is held in 16 bits (<see cref="Tape.SaveActivationsAs"/>): <see cref="Saved"/> gives it widened.</summary>
    public bool IsPacked(int index) => _node.SavedTensors[index]?.DType.Is16Bit() == true;

    /// <summary>Frees the gathers and widened copies <see cref="Saved"/> made (after the rule returned).</summary>
    internal void DisposeGathered()
    {
        foreach (var g in (_gathered ?? []).Concat(_gatheredHeld ?? [])) g?.Dispose();
        foreach (var w in _widened ?? []) w?.Dispose();
        _gathered = null;
        _gatheredHeld = null;
        _widened = null;
    }

    /// <summary>
    /// The shape of input <paramref name="index"/>; inside an SBP region, for a node that runs on
    /// compact tensors, the compact shape (the region dimension cut to its kept positions).
    /// </summary>
    public Shape InputShape(int index) => _node.RuleInputShape(index);

    public bool NeedsGrad(int index) => _node.Inputs[index].RequiresGrad;
}

/// <summary>A backward rule: input gradients from the output gradient.</summary>
public delegate Tensor?[] BackwardRule(BackwardContext context);
