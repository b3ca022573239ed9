namespace Sbp.Models.Data;

/// <summary>What <see cref="ClipTransform.Apply"/> did to a clip that may change its label.</summary>
[Flags]
public enum ClipChanges
{
    None = 0,
    /// <summary>Mirrored left to right (<see cref="IVideoDataset.MirroredLabel"/>).</summary>
    Flipped = 1,
    /// <summary>Frames in reverse order (<see cref="IVideoDataset.ReversedLabel"/>).</summary>
    Reversed = 2,
}
