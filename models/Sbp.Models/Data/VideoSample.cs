namespace Sbp.Models.Data;

/// <summary>
/// One item of a dataset: frames, the clip label (action recognition) and, for temporal detection,
/// one label per frame (0 = background, k = action class k-1; see <see cref="IVideoDataset.PerFrameLabels"/>); for
/// detection samples Label is the most frequent action label of the clip (0 if none).
/// </summary>
public sealed record VideoSample(VideoClip Clip, int Label, int[]? FrameLabels, string Name)
{
    /// <summary>The frames at <paramref name="indices"/> with their per-frame labels.</summary>
    public VideoSample Select(IReadOnlyList<int> indices) =>
        this with
        {
            Clip = Clip.Select(indices),
            FrameLabels = FrameLabels is null ? null : indices.Select(i => FrameLabels[i]).ToArray(),
        };
}
