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
    /// <summary>Files: decode with this shorter side (0 = native); default: 8/7 of the input size (256 for 224, 128 for 112).</summary>
    public int? ShortSide { get; init; }
    /// <summary>Training crop: the smallest area fraction of a random resized crop; 1 = the centre crop (default: 0.08 for files, 1 for synthetic data).</summary>
    public float? MinCropArea { get; init; }
    /// <summary>Horizontal flips with probability 0.5 in training (default: on for files, off for synthetic data, where it changes the label).</summary>
    public bool? Flip { get; init; }
    /// <summary>Time reversal with probability 0.5 in training (default off; only where the dataset relabels reversed clips: synthetic actions).</summary>
    public bool? Reverse { get; init; }
    /// <summary>Per-channel mean and std of the normalisation (0..1 scale; default 0.45 and 0.225 per channel, PySlowFast's Kinetics values).</summary>
    public float[]? Mean { get; init; }
    public float[]? Std { get; init; }
    public BadLinePolicy BadLines { get; init; } = BadLinePolicy.Skip;
}

/// <summary>Opens datasets by <see cref="DatasetSpec"/>: the one place the `sbp` commands turn a name or path into an <see cref="IVideoDataset"/>.</summary>
public static class DatasetCatalog
{
    public const string Actions = "synthetic-actions";
    public const string Detection = "synthetic-detection";

    /// <summary>Model input height and width for video files when no size is given (R(2+1)D's 112 from a short side of 128).</summary>
    public const int FileInputSize = 112;

    /// <summary>
    /// How clips of a dataset become model input. Synthetic data (built in or written by `datasets make`): the
    /// frames as generated, resized to the size asked for, no random crop or flip unless asked (flips only where the
    /// dataset relabels flipped clips: built-in synthetic actions; its classes have a left/right sense). Video files and frame folders: the standard video recipe
    /// (<see cref="ClipTransform.Video"/>): decoded at a short side of 8/7 of the size, a random resized crop
    /// (area 0.08..1) and flips in training, the centre crop in evaluation.
    /// </summary>
    public static (ClipTransform Transform, int ShortSide) Recipe(DatasetSpec s, bool synthetic, int height, int width, bool mirrorsLabels = false, bool reversesLabels = false)
    {
        if (synthetic && s.Flip == true && !mirrorsLabels)
            throw new DataOptionException(DataField.Flip, "this synthetic data has classes with a left/right sense (a flip turns 'move right' into 'move left') and no relabelling of flipped clips: leave flips off");
        if (s.Reverse == true && !reversesLabels)
            throw new DataOptionException(DataField.Reverse, "time reversal needs a dataset that says what a clip played backwards is (built-in synthetic-actions: the reverse partner class); " +
                "on other data it changes the meaning of a clip ('open' becomes 'close'): leave it off");
        float minArea = s.MinCropArea ?? (synthetic ? 1f : 0.08f);
        if (!(minArea > 0f && minArea <= 1f)) throw new DataOptionException(DataField.Crop, $"the smallest crop area must be in (0, 1] (got {minArea})");
        int shortSide = s.ShortSide ?? (synthetic ? 0 : (int)Math.Round(Math.Max(height, width) * 8.0 / 7.0));
        if (shortSide < 0) throw new DataOptionException(DataField.ShortSide, $"the short side must be 0 (native) or more (got {shortSide})");
        if (shortSide > 0 && shortSide < Math.Max(height, width))
            throw new DataOptionException(DataField.ShortSide, $"a short side of {shortSide} is smaller than the {height}x{width} input: the crop would be upsampled; use at least {Math.Max(height, width)}");
        var defaults = new ClipTransform();
        var mean = s.Mean ?? defaults.Mean;
        var std = s.Std ?? defaults.Std;
        if (mean.Length != 3 || std.Length != 3 || std.Any(v => !(v > 0f)) || mean.Any(v => !float.IsFinite(v)))
            throw new DataOptionException(DataField.Normalize, "mean and std need 3 values each (R,G,B on a 0..1 scale), std above 0");
        var tf = ClipTransform.Video(height, shortSide, minArea, flip: synthetic ? s.Flip == true : s.Flip ?? true) with
        {
            Width = width, Mean = mean, Std = std, ReverseProbability = s.Reverse == true ? 0.5f : 0f,
        };
        return (height == width ? tf : tf with { CenterCropFraction = 1f }, shortSide);
    }

    public static IReadOnlyList<(string Name, string Description)> BuiltIn { get; } =
    [
        (Actions, "action recognition: a textured shape moving on a noisy background; the class is the motion (direction, rotation sense, approach/recede, speed change, bounce)"),
        (Detection, "temporal action detection: long videos, a shape at rest (background) between action segments; per-frame labels"),
    ];

    /// <summary>Samples in a split of a synthetic dataset: the spec's, else the default (a quarter of it for validation).</summary>
    static int CountOf(DatasetSpec s, DataSplit split, int trainDefault) =>
        (split == DataSplit.Train ? s.TrainCount : s.ValCount) ?? (split == DataSplit.Train ? trainDefault : trainDefault / 4);

    public static SyntheticActionsOptions ActionsOptions(DatasetSpec s, DataSplit split)
    {
        var d = new SyntheticActionsOptions();
        return d with
        {
            Count = CountOf(s, split, d.Count),
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
            Count = CountOf(s, split, d.Count),
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
        {
            var o = ActionsOptions(spec, split);
            return new SyntheticActions(o, split, Recipe(spec, synthetic: true, o.Height, o.Width, mirrorsLabels: true, reversesLabels: true).Transform);
        }
        if (string.Equals(src, Detection, StringComparison.OrdinalIgnoreCase))
        {
            var o = DetectionOptions(spec, split);
            return new SyntheticDetection(o, split, spec.Frames is int f ? ClipSampler.Dense(f) : null, Recipe(spec, synthetic: true, o.Height, o.Width).Transform);
        }
        if (Directory.Exists(src)) return OpenWritten(src, spec, split);
        if (File.Exists(src)) return OpenFile(src, spec, null);
        throw new ArgumentException($"dataset '{src}' is neither a built-in one ({string.Join(", ", BuiltIn.Select(b => b.Name))}), " +
                                    "a folder written by `sbp datasets make`, nor a list/annotation file.");
    }

    static ClipSampler SamplerFor(DatasetSpec spec, int? defaultFrames) => spec.Sampler ?? ClipSampler.Dense(spec.Frames ?? defaultFrames ?? 16);

    static IVideoDataset OpenWritten(string dir, DatasetSpec spec, DataSplit split)
    {
        Libav.CheckSetting();
        var info = DatasetWriter.ReadInfo(dir);
        string[]? names = File.Exists(Path.Combine(dir, "classes.txt")) ? ListFile.LoadClassNames(Path.Combine(dir, "classes.txt")) : null;
        int? Number(string key) => info.TryGetValue(key, out var v) ? int.Parse(v, System.Globalization.CultureInfo.InvariantCulture) : null;
        // written from synthetic data: its size by default, and its classes forbid flips
        var (tf, shortSide) = Recipe(spec, synthetic: true, spec.Height ?? Number("height") ?? 32, spec.Width ?? Number("width") ?? 32);
        if (info.GetValueOrDefault("kind") == "detection")
        {
            var ann = SegmentAnnotations.Load(Path.Combine(dir, split.Name() + "_segments.txt"), names?.Length, names, dir, policy: spec.BadLines);
            return new SegmentDataset(ann, SamplerFor(spec, Number("frames")), shortSide, names, new FrameFolderSource(FrameRateOf(info)), tf);
        }
        var list = ListFile.Load(Path.Combine(dir, split.Name() + ".txt"), names?.Length, dir, policy: spec.BadLines);
        return new VideoListDataset(list, SamplerFor(spec, Number("frames")), shortSide, names, transform: tf);
    }

    static double FrameRateOf(Dictionary<string, string> info) =>
        info.TryGetValue("fps", out var s) ? double.Parse(s, System.Globalization.CultureInfo.InvariantCulture) : 30;

    /// <summary>A list file (2-3 fields per line) or an annotation file (4 fields), told apart by its first data line.</summary>
    static IVideoDataset OpenFile(string file, DatasetSpec spec, string[]? names)
    {
        Libav.CheckSetting();   // before any file is read
        var first = File.ReadLines(file).Select(l => l.Trim()).FirstOrDefault(l => l.Length > 0 && !l.StartsWith('#'))
                    ?? throw new ArgumentException($"{file} holds no entries.");
        string? classesFile = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(file)) ?? ".", "classes.txt");
        names ??= File.Exists(classesFile) ? ListFile.LoadClassNames(classesFile) : null;
        var (tf, shortSide) = Recipe(spec, synthetic: false, spec.Height ?? FileInputSize, spec.Width ?? FileInputSize);
        if (first.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries).Length == 4)
        {
            var ann = SegmentAnnotations.Load(file, spec.Classes ?? names?.Length, names, policy: spec.BadLines);
            return new SegmentDataset(ann, SamplerFor(spec, null), shortSide, names, transform: tf);
        }
        var list = ListFile.Load(file, spec.Classes ?? names?.Length, policy: spec.BadLines);
        return new VideoListDataset(list, SamplerFor(spec, null), shortSide, names, transform: tf);
    }
}
