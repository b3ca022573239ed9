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

    /// <summary>Frames in every clip of <see cref="Get"/>.</summary>
    int ClipFrames { get; }

    /// <summary>
    /// How a clip becomes model input [3, T, Height, Width]: output size, crop, flip and normalisation
    /// (random choices in training, the centre crop in evaluation). Loaders use it unless told otherwise.
    /// </summary>
    ClipTransform Transform { get; }

    /// <summary>A short description for `sbp datasets show`.</summary>
    string Describe();

    VideoSample Get(int index, SampleRng? rng);

    /// <summary>
    /// The label of a sample of class <paramref name="label"/> after a horizontal flip: the same class by default
    /// (Kinetics-style classes); a dataset whose classes have a left/right sense maps them (synthetic actions:
    /// right and left, clockwise and counter-clockwise swap). Loaders apply it to the flips they make.
    /// </summary>
    int MirroredLabel(int label) => label;

    /// <summary>
    /// The label of a sample of class <paramref name="label"/> played backwards, or null (the default) when the dataset
    /// does not know it: time reversal is then refused (reversing "open a door" gives "close a door"). Synthetic
    /// actions: each class's reverse partner (right and left, clockwise and counter-clockwise, approach and recede swap).
    /// </summary>
    int? ReversedLabel(int label) => null;

    /// <summary>The label of a sample of class <paramref name="label"/> after <paramref name="changes"/>.</summary>
    int ChangedLabel(int label, ClipChanges changes)
    {
        if ((changes & ClipChanges.Flipped) != 0) label = MirroredLabel(label);
        if ((changes & ClipChanges.Reversed) != 0)
            label = ReversedLabel(label) ?? throw new InvalidOperationException($"{GetType().Name}: a clip was played backwards, but the dataset does not say what a reversed clip of class {label} is; leave time reversal off.");
        return label;
    }

    /// <summary>
    /// The samples that can be read together more cheaply than one by one (a video decoder serving several
    /// clips per process), each equal to what <see cref="Get"/> returns for the same index and rng; null entries
    /// (the default: all) are read with <see cref="Get"/>, which reports their errors.
    /// </summary>
    VideoSample?[] TryGetMany(IReadOnlyList<int> indices, IReadOnlyList<SampleRng?> rngs) => new VideoSample?[indices.Count];

    /// <summary>
    /// Makes every sample ahead of training where the dataset keeps them in memory (synthetic data within its cache
    /// budget), so that the first epoch of the first run does not render them beside its steps: a comparison's runs
    /// then all train with the same loader cost. Nothing by default.
    /// </summary>
    void Preload() { }
}
