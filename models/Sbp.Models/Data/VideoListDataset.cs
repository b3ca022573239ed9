namespace Sbp.Models.Data;

/// <summary>
/// Action recognition from a <see cref="ListFile"/>: each entry is a video file (decoded by
/// <see cref="FfmpegVideoSource"/>) or a frame folder (<see cref="FrameFolderSource"/>), chosen per
/// entry by whether the path is a directory. The sampler picks the clip's frames (random with an rng,
/// deterministic without); frames are decoded at <paramref name="shortSide"/> (0 = native size).
/// An unreadable video throws <see cref="VideoReadException"/>; <see cref="VideoLoader"/> counts and skips it.
/// </summary>
public sealed class VideoListDataset(ListFile list, ClipSampler sampler, int shortSide = 0, IReadOnlyList<string>? classNames = null,
    FrameFolderSource? frames = null) : IVideoDataset
{
    readonly Lazy<FfmpegVideoSource> _videos = new(() => new FfmpegVideoSource());
    readonly FrameFolderSource _frames = frames ?? new FrameFolderSource();
    readonly string[] _names = classNames?.ToArray() ?? Enumerable.Range(0, list.Classes).Select(i => $"class {i}").ToArray();

    public ListFile List { get; } = list;
    public ClipSampler Sampler { get; } = sampler;
    public int ShortSide { get; } = shortSide;
    public int Count => List.Entries.Count;
    public IReadOnlyList<string> ClassNames => _names;
    public bool PerFrameLabels => false;

    public string Describe() =>
        $"list {List.FilePath}: {Count} videos, {List.Classes} classes, {List.Problems.Count} bad lines skipped, clips: {Sampler}" +
        (ShortSide > 0 ? $", decoded at short side {ShortSide}" : "");

    IFrameSource SourceFor(string path) => Directory.Exists(path) ? _frames : _videos.Value;

    public VideoSample Get(int index, SampleRng? rng)
    {
        var e = List.Entries[index];
        var source = SourceFor(e.Path);
        var info = source.Probe(e.Path);
        var clip = source.Read(e.Path, Sampler.Sample(info.Frames, rng), ShortSide);
        return new VideoSample(clip, e.Label, null, e.Path);
    }
}
