using System.Globalization;

namespace Sbp.Models.Data;

/// <summary>An action segment in seconds: [Start, End) with a class label (0-based, background excluded).</summary>
public readonly record struct TimeSegment(double Start, double End, int Label);

/// <summary>A video and its action segments, in file order.</summary>
public sealed record AnnotatedVideo(string Path, IReadOnlyList<TimeSegment> Segments);

/// <summary>
/// THUMOS-style temporal annotations: one segment per line, <c>video start end label</c> with times
/// in seconds and the label an integer in 0..classes-1 or a class name. Videos are paths relative to
/// the root (default: the annotation file's folder); a name without extension also matches
/// name.mp4/.avi/.mkv/.webm/.mov or a frame folder. Bad lines (wrong field count, bad or reversed
/// times, a label out of range, a missing video) are reported with file and line and skipped, or
/// thrown with <see cref="BadLinePolicy.Fail"/>.
/// </summary>
public sealed class SegmentAnnotations
{
    static readonly string[] VideoExtensions = [".mp4", ".avi", ".mkv", ".webm", ".mov"];

    SegmentAnnotations(string path, List<AnnotatedVideo> videos, List<DataFormatException> problems, int classes)
    {
        FilePath = path;
        Videos = videos;
        Problems = problems;
        Classes = classes;
    }

    public string FilePath { get; }
    public IReadOnlyList<AnnotatedVideo> Videos { get; }
    public IReadOnlyList<DataFormatException> Problems { get; }
    /// <summary>Action classes (without background): as given, or the largest label + 1.</summary>
    public int Classes { get; }

    public static SegmentAnnotations Load(string path, int? classes = null, IReadOnlyList<string>? classNames = null,
        string? root = null, bool checkFiles = true, BadLinePolicy policy = BadLinePolicy.Skip)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"annotation file not found: {path}", path);
        root ??= Path.GetDirectoryName(Path.GetFullPath(path)) ?? ".";
        classes ??= classNames?.Count;
        var order = new List<string>();
        var byVideo = new Dictionary<string, List<TimeSegment>>(StringComparer.Ordinal);
        var problems = new List<DataFormatException>();
        foreach (var (lineNo, raw, shown) in TextLines.Read(path))
        {
            if (TextLines.IsBlankOrComment(shown)) continue;
            var line = raw?.Trim();
            try
            {
                if (line is null) throw new DataFormatException(path, lineNo, $"the line is not UTF-8 text (bytes shown \\xNN): '{shown.Trim()}'");
                var (video, segment) = ParseLine(path, lineNo, line, classes, classNames, root, checkFiles);
                if (!byVideo.TryGetValue(video, out var list)) { byVideo[video] = list = []; order.Add(video); }
                list.Add(segment);
            }
            catch (DataFormatException e) when (policy == BadLinePolicy.Skip)
            {
                problems.Add(e);
            }
        }
        var videos = order.Select(v => new AnnotatedVideo(v, byVideo[v].OrderBy(s => s.Start).ToArray())).ToList();
        int n = classes ?? (videos.Count == 0 ? 0 : videos.SelectMany(v => v.Segments).Max(s => s.Label) + 1);
        return new SegmentAnnotations(path, videos, problems, n);
    }

    static (string Video, TimeSegment Segment) ParseLine(string file, int lineNo, string line, int? classes,
        IReadOnlyList<string>? names, string root, bool checkFiles)
    {
        var f = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
        if (f.Length != 4) throw new DataFormatException(file, lineNo, $"expected 'video start end label', found {f.Length} fields: '{line}'");
        if (!double.TryParse(f[1], NumberStyles.Float, CultureInfo.InvariantCulture, out double start) || !double.IsFinite(start) || start < 0)
            throw new DataFormatException(file, lineNo, $"start '{f[1]}' is not a time in seconds >= 0");
        if (!double.TryParse(f[2], NumberStyles.Float, CultureInfo.InvariantCulture, out double end) || !double.IsFinite(end))
            throw new DataFormatException(file, lineNo, $"end '{f[2]}' is not a time in seconds");
        if (end <= start) throw new DataFormatException(file, lineNo, $"end {f[2]} is not after start {f[1]}");
        int label = ListFile.ParseLabel(file, lineNo, f[3], classes, names);
        var video = ListFile.FullPath(file, lineNo, root, f[0]);
        if (checkFiles) video = Resolve(video) ?? throw new DataFormatException(file, lineNo, $"video not found: {video}");
        return (video, new TimeSegment(start, end, label));
    }

    static string? Resolve(string path)
    {
        if (File.Exists(path) || Directory.Exists(path)) return path;
        if (Path.HasExtension(path)) return null;
        return VideoExtensions.Select(e => path + e).FirstOrDefault(File.Exists);
    }

    /// <summary>
    /// Per-frame labels for a video of <paramref name="frames"/> frames at <paramref name="fps"/>:
    /// frame t (centre time (t + 0.5) / fps) gets 1 + label of the segment containing it, else 0 (background).
    /// Overlaps: the later segment in start order wins.
    /// </summary>
    public static int[] FrameLabels(IReadOnlyList<TimeSegment> segments, int frames, double fps)
    {
        var labels = new int[frames];
        foreach (var s in segments)
        {
            int a = Math.Max(0, (int)Math.Ceiling(s.Start * fps - 0.5));
            int b = Math.Min(frames, (int)Math.Ceiling(s.End * fps - 0.5));
            for (int t = a; t < b; t++) labels[t] = 1 + s.Label;
        }
        return labels;
    }
}
