namespace Sbp.Models.Data;

/// <summary>
/// An indexed video dataset. <see cref="Get"/> is deterministic: the same index and the same
/// random generator state give the same sample (the loader derives rng from (seed, epoch, index)),
/// and with <c>rng == null</c> it makes its deterministic evaluation choice (centre clip).
/// Implementations are safe to call from several threads at once.
/// </summary>
public interface IVideoDataset
{
    /// <summary>Number of samples.</summary>
    int Count { get; }

    /// <summary>Class names; labels are indices into this list (for per-frame labels index 0 is "background").</summary>
    IReadOnlyList<string> ClassNames { get; }

    /// <summary>True for temporal detection: samples carry one label per frame.</summary>
    bool PerFrameLabels { get; }

    /// <summary>A short description for `sbp datasets show`.</summary>
    string Describe();

    VideoSample Get(int index, SampleRng? rng);
}
