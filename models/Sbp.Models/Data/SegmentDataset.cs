namespace Sbp.Models.Data;

/// <summary>
/// Temporal action detection from <see cref="SegmentAnnotations"/>: each sample is a clip of an
/// annotated video with per-frame labels (0 = background, 1 + class inside a segment), frame times from
/// the video's frame rate. With a dense sampler a clip is a window of the video; pass
/// <c>ClipSampler.Dense(videoFrames)</c> or larger for whole videos (short ones repeat their last frame).
/// </summary>
public sealed class SegmentDataset(SegmentAnnotations annotations, ClipSampler sampler, int shortSide = 0,
    IReadOnlyList<string>? classNames = null, FrameFolderSource? frames = null, ClipTransform? transform = null, FfmpegVideoSource? videos = null) : IVideoDataset
{
    readonly Lazy<FfmpegVideoSource> _videos = new(() => videos ?? new FfmpegVideoSource());
    readonly FrameFolderSource _frames = frames ?? new FrameFolderSource();
    readonly string[] _names = ["background", .. classNames ?? Enumerable.Range(0, annotations.Classes).Select(i => $"action {i}")];

    public SegmentAnnotations Annotations { get; } = annotations;
    public ClipSampler Sampler { get; } = sampler;
    public int ShortSide { get; } = shortSide;
    public int Count => Annotations.Videos.Count;
    public IReadOnlyList<string> ClassNames => _names;
    public bool PerFrameLabels => true;
    public int ClipFrames => Sampler.Frames;
    /// <summary>How clips become model input (default: the 112-pixel video recipe).</summary>
    public ClipTransform Transform { get; } = transform ?? ClipTransform.Video(112, shortSide, 0.08f, flip: true);

    public string Describe() =>
        $"annotations {Annotations.FilePath}: {Count} videos, {Annotations.Videos.Sum(v => v.Segments.Count)} segments, " +
        $"{Annotations.Classes} action classes + background, {Annotations.Problems.Count} bad lines skipped, clips: {Sampler}";

    public VideoSample Get(int index, SampleRng? rng)
    {
        var v = Annotations.Videos[index];
        IFrameSource source = Directory.Exists(v.Path) ? _frames : _videos.Value;
        var (clip, idx, info) = ClipReader.Read(source, v.Path, Sampler, rng, ShortSide);
        var labels = SegmentAnnotations.FrameLabels(v.Segments, info.Frames, info.FrameRate);
        var frameLabels = idx.Select(t => labels[t]).ToArray();
        return new VideoSample(clip, MajorityAction(frameLabels), frameLabels, v.Path);
    }

    /// <summary>The most frequent non-background frame label, or 0 when the clip is all background.</summary>
    internal static int MajorityAction(int[] frameLabels)
    {
        var counts = new Dictionary<int, int>();
        foreach (int l in frameLabels) if (l != 0) counts[l] = counts.GetValueOrDefault(l) + 1;
        return counts.Count == 0 ? 0 : counts.OrderByDescending(kv => kv.Value).ThenBy(kv => kv.Key).First().Key;
    }
}
