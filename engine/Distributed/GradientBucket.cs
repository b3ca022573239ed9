using Sbp.Memory;
using Sbp.Tensors;

namespace Sbp.Distributed;

/// <summary>
/// A group of parameters whose gradients are all-reduced as one flat float32 buffer: the gradients one after
/// another, then one flag per parameter (1 where this rank had a gradient for it), so after the sum a rank
/// knows whether any rank used a parameter it did not.
/// </summary>
internal sealed class GradientBucket : IDisposable
{
    readonly List<int> _offsets = [];

    public GradientBucket(int index, IReadOnlyList<(string Name, Tensor Param)> parameters, Device device)
    {
        Index = index;
        Parameters = parameters;
        int offset = 0;
        foreach (var (_, p) in parameters)
        {
            _offsets.Add(offset);
            offset = checked(offset + (int)p.Numel);
        }
        GradientElements = offset;
        Buffer = Tensor.Empty(new Shape(offset + parameters.Count), device, DType.Float32, MemoryCategory.Gradient).DetachFromScope();
        Buffer.Name = $"ddp.bucket{index}";
    }

    public int Index { get; }
    public IReadOnlyList<(string Name, Tensor Param)> Parameters { get; }
    public Tensor Buffer { get; }
    public int GradientElements { get; }

    /// <summary>Parameters whose gradient is final this step (reset by <see cref="Reset"/>).</summary>
    public int Ready { get; set; }

    /// <summary>This rank had no gradient for some parameter this step (its slot was zero-filled).</summary>
    public bool HadUnused { get; set; }

    public PendingReduction? Pending { get; set; }

    public int Offset(int k) => _offsets[k];

    public void Reset()
    {
        Ready = 0;
        HadUnused = false;
        Pending = null;
    }

    public void Dispose() => Buffer.Dispose();
}
