namespace Sbp.Models.Data;

/// <summary>
/// Action recognition from a <see cref="ListFile"/>: each entry is a video file (decoded by
/// <see cref="FfmpegVideoSource"/>) or a frame folder (<see cref="FrameFolderSource"/>), chosen per
/// entry by whether the path is a directory. The sampler picks the clip's frames (random with an rng,
/// deterministic without); frames are decoded at <paramref name="shortSide"/> (0 = native size) and become
/// model input through <paramref name="transform"/> (default: the 112-pixel video recipe).
/// An unreadable video throws <see cref="VideoReadException"/>; <see cref="VideoLoader"/> counts and skips it.
/// </summary>
public sealed class VideoListDataset(ListFile list, ClipSampler sampler, int shortSide = 0, IReadOnlyList<string>? classNames = null,
    FrameFolderSource? frames = null, ClipTransform? transform = null, FfmpegVideoSource? videos = null) : IVideoDataset
{
    readonly Lazy<FfmpegVideoSource> _videos = new(() => videos ?? new FfmpegVideoSource());
    readonly FrameFolderSource _frames = frames ?? new FrameFolderSource();
    readonly string[] _names = classNames?.ToArray() ?? Enumerable.Range(0, list.Classes).Select(i => $"class {i}").ToArray();

    public ListFile List { get; } = list;
    public ClipSampler Sampler { get; } = sampler;
    public int ShortSide { get; } = shortSide;
    public int Count => List.Entries.Count;
    public IReadOnlyList<string> ClassNames => _names;
    public bool PerFrameLabels => false;
    public int ClipFrames => Sampler.Frames;
    public ClipTransform Transform { get; } = transform ?? ClipTransform.Video(112, shortSide, 0.08f, flip: true);

    public string Describe() =>
        $"list {List.FilePath}: {Count} videos, {List.Classes} classes, {List.Problems.Count} bad lines skipped, clips: {Sampler}" +
        (ShortSide > 0 ? $", decoded at short side {ShortSide}" : ", decoded at native size");

    IFrameSource SourceFor(string path) => Directory.Exists(path) ? _frames : _videos.Value;

    public VideoSample Get(int index, SampleRng? rng)
    {
        var e = List.Entries[index];
        var (clip, _, _) = ClipReader.Read(SourceFor(e.Path), e.Path, Sampler, rng, ShortSide);
        return new VideoSample(clip, e.Label, null, e.Path);
    }

    /// <summary>Video files are decoded several per ffmpeg process (<see cref="FfmpegVideoSource.ReadMany"/>); frame folders and failures are left to <see cref="Get"/>.</summary>
    public VideoSample?[] TryGetMany(IReadOnlyList<int> indices, IReadOnlyList<SampleRng?> rngs)
    {
        var result = new VideoSample?[indices.Count];
        var slots = new List<int>();
        var clips = new List<(string, IReadOnlyList<int>)>();
        for (int k = 0; k < indices.Count; k++)
        {
            var e = List.Entries[indices[k]];
            if (Directory.Exists(e.Path)) continue;
            try
            {
                clips.Add((e.Path, ClipReader.Draw(_videos.Value, e.Path, Sampler, rngs[k]).Indices));
                slots.Add(k);
            }
            catch (VideoReadException) { } // Get reports it
        }
        if (clips.Count < 2) return result; // nothing to share a process with
        var decoded = _videos.Value.ReadMany(clips, ShortSide);
        for (int j = 0; j < slots.Count; j++)
            if (decoded[j] is { } clip)
            {
                var e = List.Entries[indices[slots[j]]];
                result[slots[j]] = new VideoSample(clip, e.Label, null, e.Path);
            }
        return result;
    }
}
