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
    internal BackwardRule Backward { get; }

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

    public override string ToString() => $"#{Index} {Op} -> {OutputShape}, saved {MemoryPool.FormatBytes(SavedBytes)}";
}
