using System.Collections.Concurrent;
using System.Globalization;
using FFMpegCore;
using FFMpegCore.Exceptions;

namespace Sbp.Models.Data;

/// <summary>
/// Video files decoded by FFmpeg. ffprobe gives the frame count (round(duration x average frame rate)),
/// rate and size, remembered per file across runs (<see cref="VideoInfoStore"/>). A clip is decoded by
/// seeking to its first frame (frame k is the one shown at time k / rate: exact for constant frame rate),
/// decoding only its range, picking the frames sampled and scaling them to the short side asked for.
/// Decoding runs in process through FFmpeg's libraries where their version is one <see cref="Libav"/> knows
/// (<see cref="LibavDecoder"/>: no program start, and the pre-roll before a clip skips frames nothing refers
/// to), with the same frames, bit for bit, as the ffmpeg program gives; else <see cref="ReadMany"/> decodes
/// several clips in one ffmpeg process (starting one costs ~0.15 s here). Decoders run one thread each: the
/// loader's workers give the parallelism.
/// Headers that lie: when a clip comes back short, the decodable frames are counted once, remembered, said
/// once, and <see cref="FrameCountException"/> asks the caller to draw the clip again among them.
/// Videos whose whole decoded size is at most <see cref="MaxCachedVideoBytes"/> are decoded whole once and
/// kept in a <see cref="DecodedVideoCache"/>. Rotation metadata is ignored.
/// </summary>
public sealed class FfmpegVideoSource : IFrameSource
{
    /// <summary>Most clips one ffmpeg process decodes.</summary>
    public const int MaxClipsPerProcess = 8;

    /// <summary>
    /// Codecs read from the start of the file, never by seeking: old vector and run-length codecs whose key frames
    /// may update the previous picture (ffmpeg's own cinepak output does), so a decode that starts at one gives
    /// other pixels than a decode from the start. Their files are small and low-resolution.
    /// </summary>
    public static readonly IReadOnlySet<string> DecodeFromStart = new HashSet<string>(StringComparer.Ordinal) { "cinepak", "msvideo1", "msrle", "qtrle", "smc", "rpza", "8bps" };

    static readonly Lazy<VideoInfoStore> SharedStore = new(() => new VideoInfoStore(VideoInfoStore.DefaultFile()));
    readonly ConcurrentDictionary<string, VideoInfo> _info = new(StringComparer.Ordinal);
    readonly ConcurrentDictionary<string, bool> _noSeek = new(StringComparer.Ordinal);
    readonly ConcurrentDictionary<string, bool> _withoutIndex = new(StringComparer.Ordinal);   // the program's answer per file, read once
    readonly Action<string> _warn;
    int _decodeRuns;
    volatile bool _inProcessBroken;
    readonly bool _useLibraries;

    /// <param name="cacheBytes">Decoded-video cache size (0 disables it).</param>
    /// <param name="maxCachedVideoBytes">Largest decoded video (all frames, at the output size) that is cached.</param>
    /// <param name="store">Where probe results persist (default: the user's cache folder, <see cref="VideoInfoStore.DefaultFile"/>).</param>
    /// <param name="warn">Where a header that disagrees with the decodable frames is said (default: standard error).</param>
    /// <param name="useLibraries">Decode in process with FFmpeg's libraries where they can be used (<see cref="Libav"/>); false: always the ffmpeg program.</param>
    public FfmpegVideoSource(long cacheBytes = 256L << 20, long maxCachedVideoBytes = 8L << 20, VideoInfoStore? store = null, Action<string>? warn = null,
        bool useLibraries = true)
    {
        _useLibraries = useLibraries;
        Libav.CheckSetting();
        FfmpegTools.Require();
        Cache = new DecodedVideoCache(cacheBytes);
        MaxCachedVideoBytes = maxCachedVideoBytes;
        Store = store ?? SharedStore.Value;
        _warn = warn ?? (m => Console.Error.WriteLine(m));
    }

    public DecodedVideoCache Cache { get; }
    public long MaxCachedVideoBytes { get; }
    public VideoInfoStore Store { get; }

    /// <summary>ffmpeg decoding runs so far (for tests and throughput reports).</summary>
    public int DecodeRuns => Volatile.Read(ref _decodeRuns);

    public VideoInfo Probe(string path) => _info.GetOrAdd(path, p => Store.TryGet(p, out var known, out _) ? known : ProbeAndStore(p));

    VideoInfo ProbeAndStore(string path)
    {
        var info = ProbeUncached(path);
        Store.Put(path, info, counted: false);
        return info;
    }

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
        return new VideoInfo(frames, fps, h, w, v.CodecName ?? "");
    }

    bool MaySeek(string path, VideoInfo info) => !_noSeek.ContainsKey(path) && !DecodeFromStart.Contains(info.Codec);

    public VideoClip Read(string path, IReadOnlyList<int> indices, int shortSide)
    {
        var info = Probe(path);
        var (oh, ow) = FrameSize.Scaled(info.Height, info.Width, shortSide);
        if (IsCached(info, oh, ow)) return ReadCached(path, info, indices, oh, ow);
        var clip = Decode([new Request(path, info, indices, oh, ow)], seek: MaySeek(path, info), out string? failure)[0];
        if (clip is not null) return clip;
        if (failure is not null) throw new VideoReadException(path, failure);
        return ReadShort(path, info, indices, oh, ow);
    }

    /// <summary>
    /// Several clips, decoded by as few ffmpeg processes as <see cref="MaxClipsPerProcess"/> allows. An entry is
    /// null where that clip could not be read this way (an unreadable file in the group, a short clip): read it
    /// with <see cref="Read"/>, which reports its own error or corrects the frame count.
    /// </summary>
    public VideoClip?[] ReadMany(IReadOnlyList<(string Path, IReadOnlyList<int> Indices)> clips, int shortSide)
    {
        var result = new VideoClip?[clips.Count];
        var pending = new List<(int Slot, Request Request)>();
        for (int i = 0; i < clips.Count; i++)
        {
            var (path, indices) = clips[i];
            try
            {
                var info = Probe(path);
                var (oh, ow) = FrameSize.Scaled(info.Height, info.Width, shortSide);
                if (IsCached(info, oh, ow)) result[i] = ReadCached(path, info, indices, oh, ow);
                else if (MaySeek(path, info)) pending.Add((i, new Request(path, info, indices, oh, ow)));
            }
            catch (VideoReadException) { } // left null: Read says why
        }
        foreach (var group in pending.Chunk(MaxClipsPerProcess))
        {
            var decoded = Decode(group.Select(g => g.Request).ToArray(), seek: true, out _);
            for (int k = 0; k < group.Length; k++) result[group[k].Slot] = decoded[k];
        }
        return result;
    }

    bool IsCached(VideoInfo info, int oh, int ow) =>
        Cache.CapacityBytes > 0 && (long)info.Frames * oh * ow * 3 <= Math.Min(MaxCachedVideoBytes, Cache.CapacityBytes);

    VideoClip ReadCached(string path, VideoInfo info, IReadOnlyList<int> indices, int oh, int ow)
    {
        string key = $"{path}|{oh}x{ow}";
        if (!Cache.TryGet(key, out var whole))
        {
            var all = Enumerable.Range(0, info.Frames).ToArray();
            whole = Decode([new Request(path, info, all, oh, ow) { Whole = true }], seek: false, out string? failure, allowShort: true)[0]
                    ?? throw new VideoReadException(path, failure ?? $"ffmpeg decoded no frames (the video has {info.Frames} by its duration)");
            if (whole.Frames < info.Frames) Correct(path, info, whole.Frames);
            Cache.Add(key, whole);
        }
        if (indices.Max() >= whole.Frames) throw new FrameCountException(path, whole.Frames);
        return whole.Select(indices);
    }

    /// <summary>A clip that came back short: count what decodes, then correct the count (and ask for a new draw) or decode without seeking.</summary>
    VideoClip ReadShort(string path, VideoInfo info, IReadOnlyList<int> indices, int oh, int ow)
    {
        int decodable = CountDecodable(path);
        if (decodable == 0) throw new VideoReadException(path, $"ffmpeg decoded no frames (the video has {info.Frames} by its duration)");
        if (decodable < info.Frames || indices.Max() >= decodable)
        {
            Correct(path, info, decodable);
            throw new FrameCountException(path, decodable);
        }
        // every frame decodes but seeking missed some: this file is read from its start from now on
        _noSeek[path] = true;
        return Decode([new Request(path, info, indices, oh, ow)], seek: false, out string? failure, allowShort: true)[0]
               ?? throw new VideoReadException(path, failure ?? "ffmpeg decoded no frames");
    }

    void Correct(string path, VideoInfo info, int decodable)
    {
        var corrected = info with { Frames = decodable };
        _info[path] = corrected;
        Store.Put(path, corrected, counted: true);
        _warn($"note: {path}: the header says {info.Frames} frames, {decodable} decode; clips are drawn from those {decodable} (counted once" +
              (Store.File is null ? ")" : $", remembered in {Store.File})"));
    }

    /// <summary>Frames that decode, counted by decoding the whole video (in process, or by ffmpeg at 16x16 gray).</summary>
    int CountDecodable(string path)
    {
        Interlocked.Increment(ref _decodeRuns);
        if (InProcess() is { } av)
        {
            try
            {
                if (LibavDecoder.Decode(av, path, Probe(path).FrameRate, null, 0, int.MaxValue, [], 0, 0, out _) is { } d) return d.Counted;
            }
            catch (LibavLayoutException e) { GiveUpInProcess(e); }
        }
        var r = FfmpegProcess.Run(["-v", "error", "-nostdin", "-threads", "1", "-i", path, "-map", "0:v:0",
            "-vf", "scale=16:16,format=gray", "-vsync", "0", "-f", "rawvideo", "-"]);
        return (int)(r.OutputBytes / 256);
    }

    /// <summary>FFmpeg's libraries when they can be used in process (<see cref="Libav"/>), else null: the ffmpeg program decodes.</summary>
    Libav? InProcess() => _inProcessBroken || !_useLibraries ? null : Libav.Shared;

    void GiveUpInProcess(LibavLayoutException e)
    {
        if (!_inProcessBroken) _warn($"note: {e.Message}");
        _inProcessBroken = true;
    }

    /// <summary>How a new source decodes: "in process (FFmpeg 5.1's libraries)", or "by the ffmpeg program (why)".</summary>
    public static string DefaultDecoder => Libav.Shared is not null ? InProcessName : $"by the ffmpeg program ({Libav.UnavailableReason})";

    /// <summary>How this source decodes (<see cref="DefaultDecoder"/>, unless asked for the program or the libraries did not match).</summary>
    public string Decoder => InProcess() is not null ? InProcessName
        : !_useLibraries ? "by the ffmpeg program (asked for)"
        : _inProcessBroken ? "by the ffmpeg program (FFmpeg's structs did not match)" : DefaultDecoder;

    const string InProcessName = "in process (FFmpeg 5.1's libraries)";

    /// <summary>One clip to decode: frames First..First+Count-1 of the video are read, <see cref="Offsets"/> of them kept.</summary>
    sealed class Request
    {
        public Request(string path, VideoInfo info, IReadOnlyList<int> indices, int height, int width)
        {
            (Path, Info, Indices, Height, Width) = (path, info, indices, height, width);
            var (first, last) = ClipSampler.Range(indices);
            (First, Count) = (first, last - first + 1);
            Offsets = indices.Select(i => i - first).Distinct().Order().ToArray();
        }

        public string Path { get; }
        public VideoInfo Info { get; }
        public IReadOnlyList<int> Indices { get; }
        public int Height { get; }
        public int Width { get; }
        public int First { get; }
        public int Count { get; }
        /// <summary>The distinct frames wanted, as offsets from <see cref="First"/>, ascending.</summary>
        public int[] Offsets { get; }
        /// <summary>All frames of the video are wanted: a short result is the video as it decodes (no repeated frames).</summary>
        public bool Whole { get; init; }
    }

    /// <summary>
    /// The requests' clips, decoded in process when FFmpeg's libraries can be used, else by one ffmpeg run. Null
    /// entries: short clips, or clips that could not be decoded (<paramref name="failure"/> then says why).
    /// </summary>
    VideoClip?[] Decode(IReadOnlyList<Request> requests, bool seek, out string? failure, bool allowShort = false)
    {
        Interlocked.Increment(ref _decodeRuns);
        if (InProcess() is { } av)
        {
            try
            {
                var result = DecodeInProcess(av, requests, seek, allowShort, out var unopened);
                failure = null;
                if (unopened.Count == 0) return result;
                // what the libraries could not open (a codec this build of them lacks, say) goes to the ffmpeg program
                var retried = DecodeByProgram([.. unopened.Select(k => requests[k])], seek, out failure, allowShort);
                for (int i = 0; i < unopened.Count; i++) result[unopened[i]] = retried[i];
                return result;
            }
            catch (LibavLayoutException e) { GiveUpInProcess(e); }
        }
        return DecodeByProgram(requests, seek, out failure, allowShort);
    }

    /// <summary>The requests decoded one by one by FFmpeg's libraries; <paramref name="unopened"/>: those they could not open or decode at all.</summary>
    static VideoClip?[] DecodeInProcess(Libav av, IReadOnlyList<Request> requests, bool seek, bool allowShort, out List<int> unopened)
    {
        unopened = [];
        var result = new VideoClip?[requests.Count];
        for (int k = 0; k < requests.Count; k++)
        {
            var r = requests[k];
            double? seekSeconds = seek && r.First > 0 ? (r.First - 0.5) / r.Info.FrameRate : null;
            var decoded = LibavDecoder.Decode(av, r.Path, r.Info.FrameRate, seekSeconds, seek ? 0 : r.First, r.Count, r.Offsets, r.Height, r.Width, out _);
            if (decoded is { } d) result[k] = Assemble(r, d.Pixels, d.Wanted, allowShort);
            else unopened.Add(k);
        }
        return result;
    }

    /// <summary>
    /// One ffmpeg run for all requests, each input seeked (or trimmed from frame 0), cut to its range, thinned to
    /// the frames wanted, scaled and written as rgb24 to a file of its own. Null entries: short clips, or all when
    /// ffmpeg failed (<paramref name="failure"/> then says why).
    /// </summary>
    VideoClip?[] DecodeByProgram(IReadOnlyList<Request> requests, bool seek, out string? failure, bool allowShort)
    {
        string dir = Path.Combine(TempRoot(), $"sbp-decode-{Environment.ProcessId}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        try
        {
            var args = new List<string> { "-v", "error", "-nostdin" };
            var graph = new List<string>();
            var outputs = new List<string>();
            for (int k = 0; k < requests.Count; k++)
            {
                var r = requests[k];
                bool seekThis = seek && !_withoutIndex.GetOrAdd(r.Path, WithoutIndex);
                int skip = seekThis ? 0 : r.First;
                args.AddRange(["-threads", "1", "-noautorotate"]); // rotation metadata is ignored, as in process
                if (seekThis && r.First > 0) args.AddRange(["-ss", ((r.First - 0.5) / r.Info.FrameRate).ToString("F6", CultureInfo.InvariantCulture)]);
                args.AddRange(["-i", r.Path]);
                string select = r.Offsets.Length == r.Count ? "" : ",select=" + string.Join("+", r.Offsets.Select(o => $"eq(n\\,{o})"));
                string scale = r.Height != r.Info.Height || r.Width != r.Info.Width ? $",scale={r.Width}:{r.Height}:flags=area" : "";
                graph.Add(string.Create(CultureInfo.InvariantCulture,
                    $"[{k}:v:0]trim=start_frame={skip}:end_frame={skip + r.Count},setpts=PTS-STARTPTS{select}{scale},format=rgb24[v{k}]"));
                string file = Path.Combine(dir, $"{k}.rgb");
                outputs.AddRange(["-map", $"[v{k}]", "-vsync", "0", "-f", "rawvideo", file]);
            }
            args.AddRange(["-filter_threads", "1", "-filter_complex", string.Join(";", graph)]);
            args.AddRange(outputs);
            var run = FfmpegProcess.Run(args);
            var result = new VideoClip?[requests.Count];
            failure = null;
            if (run.ExitCode != 0)
            {
                failure = $"ffmpeg failed with exit code {run.ExitCode}: {string.Join(" | ", run.ErrorTail)}";
                return result;
            }
            for (int k = 0; k < requests.Count; k++)
            {
                string file = Path.Combine(dir, $"{k}.rgb");
                var bytes = File.Exists(file) ? File.ReadAllBytes(file) : [];
                result[k] = Assemble(requests[k], bytes, bytes.Length / (requests[k].Height * requests[k].Width * 3), allowShort);
            }
            return result;
        }
        catch (Exception e) when (e is IOException or System.ComponentModel.Win32Exception or UnauthorizedAccessException)
        {
            failure = $"ffmpeg cannot decode it ({FirstLine(e.Message)})";
            return new VideoClip?[requests.Count];
        }
        finally
        {
            try { Directory.Delete(dir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }

    /// <summary>
    /// MPEG transport and program streams (by their first bytes) have no index: ffmpeg seeks them by searching
    /// timestamps and can land after the key frame before the clip, so the program decodes them from the start
    /// (in process, <see cref="LibavDecoder"/> sees an overshoot and seeks earlier).
    /// </summary>
    static bool WithoutIndex(string path)
    {
        Span<byte> head = stackalloc byte[392];
        try
        {
            using var f = File.OpenRead(path);
            head = head[..f.ReadAtLeast(head, head.Length, throwOnEndOfStream: false)];
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return false; }
        bool ts = head.Length >= 377 && head[0] == 0x47 && head[188] == 0x47 && head[376] == 0x47;
        bool m2ts = head.Length >= 389 && head[4] == 0x47 && head[196] == 0x47 && head[388] == 0x47;
        bool ps = head.Length >= 4 && head[0] == 0 && head[1] == 0 && head[2] == 1 && head[3] == 0xBA;
        return ts || m2ts || ps;
    }

    /// <summary>
    /// The clip from a decoded file; null when frames are missing, unless <paramref name="allowShort"/>: then the
    /// last frame repeats, or for a whole-video request the clip holds the frames that decoded.
    /// </summary>
    static VideoClip? Assemble(Request r, byte[] bytes, int got, bool allowShort)
    {
        var offsets = r.Offsets;
        int frameBytes = r.Height * r.Width * 3;
        if (got == 0 || (got < offsets.Length && !allowShort)) return null;
        if (r.Whole && got < offsets.Length) return new VideoClip(got, r.Height, r.Width, bytes[..(got * frameBytes)]);
        var clip = new VideoClip(r.Indices.Count, r.Height, r.Width);
        for (int i = 0; i < r.Indices.Count; i++)
        {
            int k = Math.Min(Array.BinarySearch(offsets, r.Indices[i] - r.First), got - 1);
            bytes.AsSpan(k * frameBytes, frameBytes).CopyTo(clip.Frame(i));
        }
        return clip;
    }

    /// <summary>Where decoded frames pass through: memory-backed /dev/shm when it has room (containers often give it 64 MB), else the temp folder.</summary>
    static string TempRoot()
    {
        try
        {
            if (Directory.Exists("/dev/shm") && new DriveInfo("/dev/shm").AvailableFreeSpace >= 256L << 20) return "/dev/shm";
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException) { }
        return Path.GetTempPath();
    }

    static string FirstLine(string s)
    {
        int n = s.IndexOf('\n');
        return n < 0 ? s : s[..n].TrimEnd();
    }
}

/// <summary>
/// The video has fewer decodable frames than its header said; the source now knows the real count
/// (<see cref="DecodableFrames"/>): draw the clip again among them.
/// </summary>
public sealed class FrameCountException(string path, int decodableFrames)
    : VideoReadException(path, $"only {decodableFrames} frames decode; draw the clip among them")
{
    public int DecodableFrames { get; } = decodableFrames;
}
