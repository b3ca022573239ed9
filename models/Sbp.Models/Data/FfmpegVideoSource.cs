using System.Collections.Concurrent;
using System.Globalization;
using FFMpegCore;
using FFMpegCore.Exceptions;
using FFMpegCore.Pipes;

namespace Sbp.Models.Data;

/// <summary>
/// Video files decoded by ffmpeg through FFMpegCore: ffprobe for the frame count, rate and size
/// (cached per path), then one ffmpeg run per clip that decodes frames first..last of the clip
/// (trim filter: frame-exact, no seek), scales them (area filter) and pipes raw rgb24 back.
/// Frames = round(duration x average frame rate); a video that yields fewer repeats its last frame.
/// Videos whose whole decoded size is at most <see cref="MaxCachedVideoBytes"/> are decoded whole
/// once and kept in a <see cref="DecodedVideoCache"/>: starting ffmpeg costs more than decoding a
/// small clip. Rotation metadata is ignored.
/// </summary>
public sealed class FfmpegVideoSource : IFrameSource
{
    readonly ConcurrentDictionary<string, VideoInfo> _info = new(StringComparer.Ordinal);
    int _decodeRuns;

    /// <param name="cacheBytes">Decoded-video cache size (0 disables it).</param>
    /// <param name="maxCachedVideoBytes">Largest decoded video (all frames, at the output size) that is cached.</param>
    public FfmpegVideoSource(long cacheBytes = 256L << 20, long maxCachedVideoBytes = 8L << 20)
    {
        FfmpegTools.Require();
        Cache = new DecodedVideoCache(cacheBytes);
        MaxCachedVideoBytes = maxCachedVideoBytes;
    }

    public DecodedVideoCache Cache { get; }
    public long MaxCachedVideoBytes { get; }

    /// <summary>ffmpeg runs so far (for tests and throughput reports).</summary>
    public int DecodeRuns => Volatile.Read(ref _decodeRuns);

    public VideoInfo Probe(string path) => _info.GetOrAdd(path, ProbeUncached);

    static VideoInfo ProbeUncached(string path)
    {
        if (!File.Exists(path)) throw new VideoReadException(path, "file not found");
        IMediaAnalysis analysis;
        try
        {
            analysis = FFProbe.Analyse(path, FfmpegTools.Options);
        }
        catch (Exception e) when (e is FFMpegException or IOException or FormatException or System.Text.Json.JsonException or InvalidOperationException or ArgumentException)
        {
            throw new VideoReadException(path, $"ffprobe cannot read it ({FirstLine(e.Message)})", e);
        }
        var v = analysis.PrimaryVideoStream ?? throw new VideoReadException(path, "no video stream");
        if (v.Width is not int w || v.Height is not int h || w <= 0 || h <= 0) throw new VideoReadException(path, "video stream without a frame size");
        double fps = v.AverageFrameRate > 0 ? v.AverageFrameRate : v.RealFrameRate;
        var duration = v.Duration > TimeSpan.Zero ? v.Duration : analysis.Duration;
        int frames = (int)Math.Round(duration.TotalSeconds * fps);
        if (frames <= 0 || double.IsNaN(fps)) throw new VideoReadException(path, $"no frames (duration {duration.TotalSeconds:F3} s at {fps:F3} fps)");
        return new VideoInfo(frames, fps, h, w);
    }

    public VideoClip Read(string path, IReadOnlyList<int> indices, int shortSide)
    {
        var info = Probe(path);
        var (oh, ow) = FrameSize.Scaled(info.Height, info.Width, shortSide);
        if (Cache.CapacityBytes > 0 && (long)info.Frames * oh * ow * 3 <= Math.Min(MaxCachedVideoBytes, Cache.CapacityBytes))
        {
            string key = $"{path}|{oh}x{ow}";
            if (!Cache.TryGet(key, out var whole))
            {
                whole = Decode(path, info, Enumerable.Range(0, info.Frames).ToArray(), oh, ow);
                Cache.Add(key, whole);
            }
            return whole.Select(indices.Select(t => Math.Min(t, whole.Frames - 1)).ToArray());
        }
        return Decode(path, info, indices, oh, ow);
    }

    VideoClip Decode(string path, VideoInfo info, IReadOnlyList<int> indices, int oh, int ow)
    {
        Interlocked.Increment(ref _decodeRuns);
        var (first, last) = ClipSampler.Range(indices);
        int count = last - first + 1, frameBytes = oh * ow * 3;
        using var ms = new MemoryStream(count * frameBytes);
        string filters = $"trim=start_frame={first}:end_frame={last + 1},setpts=PTS-STARTPTS" +
                         (oh != info.Height || ow != info.Width ? $",scale={ow}:{oh}:flags=area" : "");
        FFMpegResult result;
        try
        {
            result = FFMpegArguments
                .FromFileInput(path, verifyExists: true, _ => { })
                .OutputToPipe(new StreamPipeSink(ms) { Format = "rawvideo" }, o => o
                    .WithCustomArgument(string.Create(CultureInfo.InvariantCulture,
                        $"-an -sn -dn -vf {filters} -vsync 0 -frames:v {count} -pix_fmt rgb24")))
                .ProcessSynchronously(throwOnError: false, ffOptions: FfmpegTools.Options);
        }
        catch (Exception e) when (e is FFMpegException or IOException or InvalidOperationException)
        {
            throw new VideoReadException(path, $"ffmpeg cannot decode it ({FirstLine(e.Message)})", e);
        }
        if (!result.Success)
            throw new VideoReadException(path, $"ffmpeg failed with exit code {result.ExitCode}: {string.Join(" | ", result.StandardError.TakeLast(3))}");
        int got = (int)(ms.Length / frameBytes);
        if (got == 0) throw new VideoReadException(path, $"ffmpeg decoded no frames in {first}..{last} (the video has {info.Frames} by its duration)");

        var decoded = ms.GetBuffer();
        var clip = new VideoClip(indices.Count, oh, ow);
        for (int i = 0; i < indices.Count; i++)
        {
            int k = Math.Min(indices[i] - first, got - 1); // short video: repeat the last frame
            decoded.AsSpan(k * frameBytes, frameBytes).CopyTo(clip.Frame(i));
        }
        return clip;
    }

    static string FirstLine(string s)
    {
        int n = s.IndexOf('\n');
        return n < 0 ? s : s[..n].TrimEnd();
    }
}
