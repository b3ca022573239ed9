namespace Sbp.Models.Data;

/// <summary>
/// What to open: a built-in synthetic dataset by name, a folder written by `sbp datasets make`, a list
/// file (`path label`) or a segment annotation file (`video start end label`), plus the knobs that apply.
/// Null knobs take the dataset's defaults (or, for a written folder, its dataset.txt).
/// </summary>
public sealed record DatasetSpec
{
    public required string Source { get; init; }
    public int? Frames { get; init; }
    public int? Height { get; init; }
    public int? Width { get; init; }
    public int? Classes { get; init; }
    public ulong Seed { get; init; } = 1;
    public float? Noise { get; init; }
    public float? Speed { get; init; }
    public float? ObjectSize { get; init; }
    public int? Distractors { get; init; }
    public int? TrainCount { get; init; }
    public int? ValCount { get; init; }
    /// <summary>Detection: frames per synthetic video; clips of <see cref="Frames"/> are windows of it.</summary>
    public int? VideoFrames { get; init; }
    /// <summary>Real data: how clips are sampled (default dense over <see cref="Frames"/> or 16 frames, stride 1).</summary>
    public ClipSampler? Sampler { get; init; }
    /// <summary>Real data: decode with this shorter side (0 = native).</summary>
    public int ShortSide { get; init; }
    public BadLinePolicy BadLines { get; init; } = BadLinePolicy.Skip;
}

/// <summary>Opens datasets by <see cref="DatasetSpec"/>: the one place the `sbp` commands turn a name or path into an <see cref="IVideoDataset"/>.</summary>
public static class DatasetCatalog
{
    public const string Actions = "synthetic-actions";
    public const string Detection = "synthetic-detection";

    public static IReadOnlyList<(string Name, string Description)> BuiltIn { get; } =
    [
        (Actions, "action recognition: a textured shape moving on a noisy background; the class is the motion (direction, rotation sense, approach/recede, speed change, bounce)"),
        (Detection, "temporal action detection: long videos, a shape at rest (background) between action segments; per-frame labels"),
    ];

    public static SyntheticActionsOptions ActionsOptions(DatasetSpec s, DataSplit split)
    {
        var d = new SyntheticActionsOptions();
        return d with
        {
            Count = (split == DataSplit.Train ? s.TrainCount : s.ValCount) ?? (split == DataSplit.Train ? d.Count : d.Count / 4),
            Frames = s.Frames ?? d.Frames,
            Height = s.Height ?? d.Height,
            Width = s.Width ?? d.Width,
            Classes = s.Classes ?? d.Classes,
            Seed = s.Seed,
            Noise = s.Noise ?? d.Noise,
            Speed = s.Speed ?? d.Speed,
            ObjectSize = s.ObjectSize ?? d.ObjectSize,
            Distractors = s.Distractors ?? d.Distractors,
        };
    }

    public static SyntheticDetectionOptions DetectionOptions(DatasetSpec s, DataSplit split)
    {
        var d = new SyntheticDetectionOptions();
        return d with
        {
            Count = (split == DataSplit.Train ? s.TrainCount : s.ValCount) ?? (split == DataSplit.Train ? d.Count : d.Count / 4),
            Frames = s.VideoFrames ?? d.Frames,
            Height = s.Height ?? d.Height,
            Width = s.Width ?? d.Width,
            Classes = s.Classes ?? d.Classes,
            Seed = s.Seed,
            Noise = s.Noise ?? d.Noise,
            Speed = s.Speed ?? d.Speed,
            ObjectSize = s.ObjectSize ?? d.ObjectSize,
        };
    }

    /// <summary>The bad lines a list or annotation dataset skipped when it was read (none for other datasets).</summary>
    public static IReadOnlyList<DataFormatException> BadLines(IVideoDataset data) => data switch
    {
        VideoListDataset v => v.List.Problems,
        SegmentDataset s => s.Annotations.Problems,
        _ => [],
    };

    /// <summary>
    /// The bad lines skipped in <paramref name="data"/> as lines to print: a count, the first
    /// <paramref name="first"/> with file:line and the problem, and how to see the rest. Empty when there are none.
    /// </summary>
    public static IReadOnlyList<string> BadLineReport(IVideoDataset data, int first = 5)
    {
        var bad = BadLines(data);
        if (bad.Count == 0) return [];
        var lines = new List<string> { $"warning: {bad.Count} bad line{(bad.Count == 1 ? "" : "s")} skipped in {bad[0].File} (--strict stops at the first instead):" };
        lines.AddRange(bad.Take(first).Select(b => "  " + b.Message));
        if (bad.Count > first) lines.Add($"  ... and {bad.Count - first} more: `sbp datasets show {bad[0].File}` lists them all.");
        return lines;
    }

    /// <summary>The split of a dataset. For a list or annotation file the split is ignored (the file is the split).</summary>
    public static IVideoDataset Open(DatasetSpec spec, DataSplit split)
    {
        string src = spec.Source;
        if (string.Equals(src, Actions, StringComparison.OrdinalIgnoreCase))
            return new SyntheticActions(ActionsOptions(spec, split), split);
        if (string.Equals(src, Detection, StringComparison.OrdinalIgnoreCase))
            return new SyntheticDetection(DetectionOptions(spec, split), split, spec.Frames is int f ? ClipSampler.Dense(f) : null);
        if (Directory.Exists(src)) return OpenWritten(src, spec, split);
        if (File.Exists(src)) return OpenFile(src, spec, null);
        throw new ArgumentException($"dataset '{src}' is neither a built-in one ({string.Join(", ", BuiltIn.Select(b => b.Name))}), " +
                                    "a folder written by `sbp datasets make`, nor a list/annotation file.");
    }

    static ClipSampler SamplerFor(DatasetSpec spec, int? defaultFrames) => spec.Sampler ?? ClipSampler.Dense(spec.Frames ?? defaultFrames ?? 16);

    static IVideoDataset OpenWritten(string dir, DatasetSpec spec, DataSplit split)
    {
        var info = DatasetWriter.ReadInfo(dir);
        string[]? names = File.Exists(Path.Combine(dir, "classes.txt")) ? ListFile.LoadClassNames(Path.Combine(dir, "classes.txt")) : null;
        int? frames = info.TryGetValue("frames", out var fr) ? int.Parse(fr, System.Globalization.CultureInfo.InvariantCulture) : null;
        if (info.GetValueOrDefault("kind") == "detection")
        {
            var ann = SegmentAnnotations.Load(Path.Combine(dir, split.Name() + "_segments.txt"), names?.Length, names, dir, policy: spec.BadLines);
            return new SegmentDataset(ann, SamplerFor(spec, frames), spec.ShortSide, names, new FrameFolderSource(FrameRateOf(info)));
        }
        var list = ListFile.Load(Path.Combine(dir, split.Name() + ".txt"), names?.Length, dir, policy: spec.BadLines);
        return new VideoListDataset(list, SamplerFor(spec, frames), spec.ShortSide, names);
    }

    static double FrameRateOf(Dictionary<string, string> info) =>
        info.TryGetValue("fps", out var s) ? double.Parse(s, System.Globalization.CultureInfo.InvariantCulture) : 30;

    /// <summary>A list file (2-3 fields per line) or an annotation file (4 fields), told apart by its first data line.</summary>
    static IVideoDataset OpenFile(string file, DatasetSpec spec, string[]? names)
    {
        var first = File.ReadLines(file).Select(l => l.Trim()).FirstOrDefault(l => l.Length > 0 && !l.StartsWith('#'))
                    ?? throw new ArgumentException($"{file} holds no entries.");
        string? classesFile = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(file)) ?? ".", "classes.txt");
        names ??= File.Exists(classesFile) ? ListFile.LoadClassNames(classesFile) : null;
        if (first.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries).Length == 4)
        {
            var ann = SegmentAnnotations.Load(file, spec.Classes ?? names?.Length, names, policy: spec.BadLines);
            return new SegmentDataset(ann, SamplerFor(spec, null), spec.ShortSide, names);
        }
        var list = ListFile.Load(file, spec.Classes ?? names?.Length, policy: spec.BadLines);
        return new VideoListDataset(list, SamplerFor(spec, null), spec.ShortSide, names);
    }
}
