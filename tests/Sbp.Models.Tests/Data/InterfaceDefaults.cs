using Sbp.Models.Data;

namespace Sbp.Models.Tests.Data;

/// <summary>
/// A dataset that forwards only the members every <see cref="IVideoDataset"/> must have: its optional ones take the
/// interface's defaults (samples read one by one, a flip keeps the label, no rule for a reversed clip).
/// </summary>
sealed class InterfaceDefaults(IVideoDataset inner) : IVideoDataset
{
    public int Count => inner.Count;
    public IReadOnlyList<string> ClassNames => inner.ClassNames;
    public bool PerFrameLabels => inner.PerFrameLabels;
    public int ClipFrames => inner.ClipFrames;
    public ClipTransform Transform => inner.Transform;
    public string Describe() => inner.Describe();
    public VideoSample Get(int index, SampleRng? rng) => inner.Get(index, rng);
}
