using Sbp.Tensors;

namespace Sbp.Models.Data;

/// <summary>
/// One batch on a device. Layout:
/// <list type="bullet">
/// <item><see cref="Clips"/>: float32 [B, C, T, H, W], C = 3 (RGB), row-major (W fastest), normalized per channel by the loader's <see cref="ClipTransform"/>.</item>
/// <item><see cref="Labels"/>: int32 [B] class indices, or int32 [B, T] per-frame labels (0 = background) for detection datasets.</item>
/// </list>
/// The batch owns its tensors: dispose it (or let an enclosing <see cref="TensorScope"/> do so).
/// </summary>
public sealed class VideoBatch : IDisposable
{
    internal VideoBatch(Tensor clips, Tensor labels, int[] indices, string[] names)
    {
        Clips = clips;
        Labels = labels;
        Indices = indices;
        Names = names;
    }

    public Tensor Clips { get; }
    public Tensor Labels { get; }
    /// <summary>Dataset indices of the samples (after corrupt-video replacement).</summary>
    public IReadOnlyList<int> Indices { get; }
    /// <summary>Sample names (file paths for real data).</summary>
    public IReadOnlyList<string> Names { get; }
    public int Size => Indices.Count;

    public void Dispose()
    {
        Clips.Dispose();
        Labels.Dispose();
    }
}
