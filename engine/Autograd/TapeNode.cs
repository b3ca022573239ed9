using Sbp.Memory;
using Sbp.Tensors;

namespace Sbp.Autograd;

/// <summary>One recorded op: its output, inputs, the tensors it saved and its backward rule.</summary>
public sealed class TapeNode
{
    internal TapeNode(int index, string op, Tensor output, Tensor[] inputs, Tensor?[] saved, long savedBytes, BackwardRule backward)
    {
        Index = index;
        Op = op;
        OutputId = output.Id;
        OutputShape = output.Shape;
        Inputs = inputs;
        InputShapes = inputs.Select(t => t.Shape).ToArray();
        SavedTensors = saved;
        SavedBytes = savedBytes;
        Backward = backward;
    }

    public int Index { get; }
    public string Op { get; }
    public long OutputId { get; }
    public Shape OutputShape { get; }
    /// <summary>Input tensor objects, used for identity and leaf gradients only, never for data.</summary>
    internal Tensor[] Inputs { get; }
    public IReadOnlyList<Shape> InputShapes { get; }
    internal Tensor?[] SavedTensors { get; private set; }
    internal BackwardRule Backward { get; private set; }

    /// <summary>True when the backward rule runs a tape of its own (a recompute or checkpoint region), which may add to
    /// the gradient of leaves this tape does not list as inputs.</summary>
    internal bool RunsSubTape { get; set; }

    /// <summary>The SBP region this node was recorded in, if any.</summary>
    public string? Region { get; internal set; }

    /// <summary>Recorded in a region under <see cref="Tape.SaveActivationsAs"/>: its saved tensors are packed as this type when the region ends.</summary>
    internal Sbp.Tensors.DType? PackAs { get; set; }

    /// <summary>
    /// True when the node runs backward on compact tensors inside an SBP region: its output gradient
    /// and the saved tensors with a layout hold only the kept positions.
    /// </summary>
    public bool IsCompact { get; private set; }

    /// <summary>Per input: the compact form its gradient comes back in (SBP: kept positions), or null (dense).</summary>
    internal ICompactForm?[]? InputForms { get; private set; }

    /// <summary>The shape of input <paramref name="index"/> as the backward rule sees it (compact or full).</summary>
    internal Shape RuleInputShape(int index) =>
        InputForms?[index] is { } f ? f.CompactShape(InputShapes[index]) : InputShapes[index];

    /// <summary>Switches the node to compact backward: its inputs' gradients come back in these forms (a new rule, if given, computes them).</summary>
    internal void SetCompact(ICompactForm?[] inputs, BackwardRule? backward)
    {
        IsCompact = true;
        InputForms = inputs;
        if (backward is not null) Backward = backward;
    }

    /// <summary>Declares that the rule returns input gradients in these forms (the region output node).</summary>
    internal void SetInputForms(ICompactForm?[] forms) => InputForms = forms;

    /// <summary>
    /// Per saved slot: the form to gather it to when backward reads it (the slot holds the full
    /// tensor, which another node of the region keeps whole anyway), or null.
    /// </summary>
    internal ICompactForm?[]? DeferredGathers { get; private set; }

    /// <summary>Backward reads saved slot <paramref name="slot"/> gathered to <paramref name="form"/> (see <see cref="DeferredGathers"/>).</summary>
    internal void DeferGather(int slot, ICompactForm form)
    {
        DeferredGathers ??= new ICompactForm?[SavedTensors.Length];
        DeferredGathers[slot] = form;
    }

    /// <summary>Replaces saved tensor <paramref name="slot"/> (the tape keeps the byte count).</summary>
    internal void ReplaceSaved(int slot, Tensor replacement, long savedBytes)
    {
        SavedTensors[slot] = replacement;
        SavedBytes = savedBytes;
    }

    /// <summary>
    /// Activation bytes this node holds for backward: the sizes of its saved tensors that would
    /// otherwise be temporaries (parameters it references are not counted). 0 once freed.
    /// </summary>
    public long SavedBytes { get; private set; }

    public bool IsFreed => SavedTensors.Length == 0 && SavedBytes == 0;

    internal void FreeSaved()
    {
        foreach (var t in SavedTensors)
        {
            if (t is null) continue;
            var block = t.Block;
            block.Pool.SetSavedHold(block, -1);
            t.Dispose();
        }
        SavedTensors = [];
        SavedBytes = 0;
    }

    public override string ToString() =>
        $"#{Index} {Op} -> {OutputShape}, saved {MemoryPool.FormatBytes(SavedBytes)}{(IsCompact ? " (compact)" : "")}{(Region is null ? "" : $" in {Region}")}";
}
