using Sbp.Memory;
using Sbp.Stochastic;
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

    /// <summary>The SBP region this node was recorded in, if any.</summary>
    public string? Region { get; internal set; }

    /// <summary>
    /// True when the node runs backward on compact tensors inside an SBP region: its output gradient
    /// and the saved tensors with a layout hold only the kept positions.
    /// </summary>
    public bool IsCompact { get; private set; }

    /// <summary>Per input: the layout its gradient comes back in (compact), or null (dense).</summary>
    internal PositionLayout?[]? InputLayouts { get; private set; }

    /// <summary>The shape of input <paramref name="index"/> as the backward rule sees it (compact or full).</summary>
    internal Shape RuleInputShape(int index) =>
        InputLayouts?[index] is { } l ? l.CompactShape(InputShapes[index]) : InputShapes[index];

    /// <summary>Switches the node to compact backward with a region plan (called when its region closes).</summary>
    internal void SetCompact(NodePlan plan)
    {
        IsCompact = true;
        InputLayouts = plan.Inputs;
        if (plan.CompactBackward is { } b) Backward = b;
    }

    /// <summary>Declares that the rule returns input gradients in these layouts (the region output node).</summary>
    internal void SetInputLayouts(PositionLayout?[] layouts) => InputLayouts = layouts;

    /// <summary>
    /// Per saved slot: the layout to gather it to when backward reads it (the slot holds the full
    /// tensor, which another node of the region keeps whole anyway), or null.
    /// </summary>
    internal PositionLayout?[]? DeferredGathers { get; private set; }

    /// <summary>Backward reads saved slot <paramref name="slot"/> gathered to <paramref name="layout"/> (see <see cref="DeferredGathers"/>).</summary>
    internal void DeferGather(int slot, PositionLayout layout)
    {
        DeferredGathers ??= new PositionLayout?[SavedTensors.Length];
        DeferredGathers[slot] = layout;
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
