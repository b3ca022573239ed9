using TorchSharp;

namespace Sbp.Tools.ReferenceFixtures;

/// <summary>One named entry of a model's state dict: a parameter or a buffer.</summary>
internal sealed class StateEntry(string name, EntryKind kind, torch.Tensor value)
{
    public string Name { get; } = name;
    public EntryKind Kind { get; } = kind;
    public torch.Tensor Value { get; set; } = value;

    /// <summary>Parameters get gradients; BatchNorm statistics and index buffers do not.</summary>
    public bool IsParameter => Kind is not (EntryKind.RunningMean or EntryKind.RunningVar or EntryKind.Index);
}
