namespace Sbp.Models.Pretrained;

/// <summary>A state-dict entry on the host: its shape and its values, row-major (integer buffers as exact floats).</summary>
public sealed record HostArray(int[] Shape, float[] Values)
{
    public override string ToString() => $"[{string.Join(", ", Shape)}]";
}
