using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Sbp.Models.Data;
using Sbp.Tensors;

namespace Sbp.Cli;

/// <summary>
/// `sbp datasets list | show DATASET | make DATASET --out DIR`. DATASET is a built-in synthetic
/// dataset (synthetic-actions, synthetic-detection), a folder written by `make`, a list file or a
/// segment annotation file (<see cref="DatasetCatalog"/>).
/// </summary>
public static class DatasetsCommand
{
    /// <summary>The dataset options shared by show and make (and reusable by train/eval via <see cref="Spec"/>).</summary>
    public sealed class DatasetOptions
    {
        public readonly Argument<string> Dataset = new("dataset") { Description = "synthetic-actions, synthetic-detection, a folder written by `datasets make`, a list file or an annotation file" };
        public readonly Option<int?> Frames = new("--frames") { Description = "frames per clip (synthetic actions: per video; detection: per window; files: dense clip length)" };
        public readonly Option<int?> Size = new("--size") { Description = "frame height and width: synthetic data is made at this size, files are cropped to it (default: synthetic 32, files 112)" };
        public readonly Option<int?> Height = new("--height") { Description = "frame height of synthetic data (overrides --size)" };
        public readonly Option<int?> Width = new("--width") { Description = "frame width of synthetic data (overrides --size)" };
        public readonly Option<int?> Classes = new("--classes") { Description = "number of classes (synthetic: the first N; files: labels must be below N)" };
        public readonly Option<ulong> Seed = new("--seed") { Description = "seed of synthetic data", DefaultValueFactory = _ => 1UL };
        public readonly Option<float?> Noise = new("--noise") { Description = "synthetic: per-pixel noise std in [0, 1] (harder when larger)" };
        public readonly Option<float?> Speed = new("--speed") { Description = "synthetic: motion relative to the default 1 (harder when smaller)" };
        public readonly Option<float?> ObjectSize = new("--object-size") { Description = "synthetic: object size as a fraction of the frame (harder when smaller)" };
        public readonly Option<int?> Distractors = new("--distractors") { Description = "synthetic actions: static clutter shapes (0..8)" };
        public readonly Option<int?> Train = new("--train") { Description = "synthetic: training samples" };
        public readonly Option<int?> Val = new("--val") { Description = "synthetic: validation samples" };
        public readonly Option<int?> VideoFrames = new("--video-frames") { Description = "synthetic detection: frames per video" };
        public readonly Option<string?> Clip = new("--clip") { Description = "files: clip sampling, dense:FRAMES[:STRIDE] or uniform:FRAMES" };
        public readonly InputOptions Input = new();
        public readonly Option<bool> Strict = new("--strict") { Description = "files: fail on the first bad line instead of skipping it" };

        public void AddTo(Command cmd)
        {
            cmd.Add(Dataset);
            Option[] all = [Frames, Size, Height, Width, Classes, Seed, Noise, Speed, ObjectSize, Distractors, Train, Val, VideoFrames, Clip, .. Input.All, Strict];
            foreach (var o in all) cmd.Add(o);
        }

        /// <summary>The dataset settings, each checked here and named by its option when malformed.</summary>
        public DatasetSpec Spec(ParseResult r)
        {
            foreach (var (option, value) in new[] { (Frames, r.GetValue(Frames)), (Size, r.GetValue(Size)), (Height, r.GetValue(Height)), (Width, r.GetValue(Width)),
                         (Classes, r.GetValue(Classes)), (Train, r.GetValue(Train)), (Val, r.GetValue(Val)), (VideoFrames, r.GetValue(VideoFrames)) })
                if (value is < 1) throw new ArgumentException($"{option.Name} {value}: must be at least 1.");
            if (r.GetValue(Clip) is { } clip)
                try { ClipSampler.Parse(clip); }
                catch (ArgumentException e) { throw new ArgumentException($"{Clip.Name}: {e.Message}"); }
            return Input.Apply(r, SpecOf(r));
        }

        DatasetSpec SpecOf(ParseResult r) => new()
        {
            Source = r.GetValue(Dataset)!,
            Frames = r.GetValue(Frames),
            Height = r.GetValue(Height) ?? r.GetValue(Size),
            Width = r.GetValue(Width) ?? r.GetValue(Size),
            Classes = r.GetValue(Classes),
            Seed = r.GetValue(Seed),
            Noise = r.GetValue(Noise),
            Speed = r.GetValue(Speed),
            ObjectSize = r.GetValue(ObjectSize),
            Distractors = r.GetValue(Distractors),
            TrainCount = r.GetValue(Train),
            ValCount = r.GetValue(Val),
            VideoFrames = r.GetValue(VideoFrames),
            Sampler = r.GetValue(Clip) is { } c ? ClipSampler.Parse(c) : null,
            BadLines = r.GetValue(Strict) ? BadLinePolicy.Fail : BadLinePolicy.Skip,
        };
    }

    /// <summary>A split of the dataset, with a dataset's own limits reported under the option that sets them.</summary>
    static IVideoDataset Open(DatasetOptions d, DatasetSpec spec, DataSplit split)
    {
        try { return DatasetCatalog.Open(spec, split); }
        catch (DataOptionException e)
        {
            string option = e.Field switch
            {
                DataField.Count => (split == DataSplit.Train ? d.Train : d.Val).Name,
                DataField.Frames => d.Frames.Name,
                DataField.Size => d.Size.Name,
                DataField.Classes => d.Classes.Name,
                DataField.Noise => d.Noise.Name,
                DataField.Speed => d.Speed.Name,
                DataField.ObjectSize => d.ObjectSize.Name,
                DataField.Distractors => d.Distractors.Name,
                DataField.VideoFrames => d.VideoFrames.Name,
                _ => d.Input.NameOf(e.Field) ?? spec.Source,
            };
            throw new ArgumentException($"{option}: {e.Message}.");
        }
    }

    public static Command Create()
    {
        var cmd = new Command("datasets", "built-in synthetic video datasets and real video data: list, show, make" + TrainCommand.Examples(
            "sbp datasets list", "sbp datasets show synthetic-actions --frames 16 --size 32", "sbp datasets make synthetic-actions --out data/actions --format png"));
        cmd.Add(CreateList());
        cmd.Add(CreateShow());
        cmd.Add(CreateMake());
        return cmd;
    }

    static Command CreateList()
    {
        var cmd = new Command("list", "list the built-in synthetic datasets" + TrainCommand.Examples("sbp datasets list"));
        cmd.SetAction(r =>
        {
            var o = r.InvocationConfiguration.Output;
            foreach (var (name, description) in DatasetCatalog.BuiltIn) o.WriteLine($"{name}: {description}");
            o.WriteLine("Real data: a folder written by `sbp datasets make`, a list file ('relative/path label' per line) or a segment file ('video start end label').");
            return 0;
        });
        return cmd;
    }

    static Command CreateShow()
    {
        var d = new DatasetOptions();
        var split = new Option<string>("--split") { Description = "train or val", DefaultValueFactory = _ => "train" };
        var batches = new Option<int>("--batches") { Description = "also read this many batches through the loader and time them" };
        var batchSize = new Option<int>("--batch-size") { Description = "batch size for --batches", DefaultValueFactory = _ => 8 };
        var workers = new Option<int>("--workers") { Description = "decoding threads for --batches", DefaultValueFactory = _ => 2 };
        var dump = new Option<string?>("--dump") { Description = "write the first 4 samples as PNG strips to this folder: rows = training view (epochs 0 and 1: random crop and flip) and evaluation view (centre crop)" };
        var throughput = new Option<bool>("--throughput") { Description = "time the loader (--batches, default 8) and a training step of --model on such batches: which of the two is the bottleneck" };
        var model = new Option<string>("--model") { Description = "model for --throughput", DefaultValueFactory = _ => new Sbp.Models.Training.TrainConfig().Model };
        var cmd = new Command("show", "print a dataset's size, classes, clip shape and input recipe (and the bad lines of a list file)" + TrainCommand.Examples(
            "sbp datasets show synthetic-actions", "sbp datasets show data/actions --split val --batches 4", "sbp datasets show clips.txt --size 64 --dump strips",
            "sbp datasets show clips.txt --size 128 --frames 16 --throughput")) { split, batches, batchSize, workers, dump, throughput, model };
        cmd.Aliases.Add("info");
        d.AddTo(cmd);
        cmd.SetAction(r =>
        {
            var spec = d.Spec(r);
            DataSplit which;
            try { which = DataSplitNames.Parse(r.GetValue(split)!); }
            catch (ArgumentException e) { throw new ArgumentException($"--split: {e.Message}"); }
            if (r.GetValue(batches) < 0) throw new ArgumentException($"--batches {r.GetValue(batches)}: must be 0 or more.");
            if (r.GetValue(batchSize) < 1) throw new ArgumentException($"--batch-size {r.GetValue(batchSize)}: must be at least 1.");
            if (r.GetValue(workers) < 1) throw new ArgumentException($"--workers {r.GetValue(workers)}: must be at least 1.");
            if (r.GetValue(throughput) && !Sbp.Models.Architectures.ModelFactory.Names.Contains(r.GetValue(model)!))
                throw new ArgumentException($"--model '{r.GetValue(model)}' is not a model; use one of {string.Join(", ", Sbp.Models.Architectures.ModelFactory.Names)}.");
            string? dumpDir = r.GetValue(dump) is { } dd ? OutputPaths.Folder("--dump", dd, "the PNG strips") : null;
            int n = r.GetValue(throughput) && r.GetValue(batches) == 0 ? 8 : r.GetValue(batches);
            return Show(r, d, spec, which, n, r.GetValue(batchSize), r.GetValue(workers), dumpDir, r.GetValue(throughput) ? r.GetValue(model) : null);
        });
        return cmd;
    }

    static int Show(ParseResult r, DatasetOptions d, DatasetSpec spec, DataSplit split, int batches, int batchSize, int workers, string? dumpDir, string? stepModel)
    {
        var o = r.InvocationConfiguration.Output;
        var data = Open(d, spec, split);
        o.WriteLine(data.Describe());
        o.WriteLine($"samples: {data.Count}");
        var counts = LabelCounts(data);
        o.WriteLine($"classes: {data.ClassNames.Count}{(data.PerFrameLabels ? " (per-frame labels, 0 = background)" : "")}");
        for (int c = 0; c < data.ClassNames.Count; c++)
            o.WriteLine(counts is null ? $"  {c,3}  {data.ClassNames[c]}" : $"  {c,3}  {data.ClassNames[c],-28} {counts[c],7} samples");
        var problems = DatasetCatalog.BadLines(data);
        if (problems.Count > 0)
        {
            o.WriteLine($"bad lines skipped: {problems.Count}");
            foreach (var p in problems.Take(10)) o.WriteLine($"  {p.Message}");
            if (problems.Count > 10) o.WriteLine($"  ... and {problems.Count - 10} more");
        }
        if (data.Count == 0) return 0;
        VideoSample first;
        try
        {
            first = data.Get(0, null);
        }
        catch (VideoReadException e)
        {
            o.WriteLine($"first sample unreadable: {e.Message}");
            return 0;
        }
        o.WriteLine($"clip: {first.Clip.Frames} frames of {first.Clip.Height}x{first.Clip.Width}x3 (uint8 RGB); batches: clips float32 [B, 3, {first.Clip.Frames}, H, W], " +
                    (data.PerFrameLabels ? $"labels int32 [B, {first.Clip.Frames}]" : "labels int32 [B]"));
        o.WriteLine($"input: {data.Transform.Describe()}");
        if (dumpDir is not null) DatasetStrips.Write(o, data, dumpDir, Math.Min(4, data.Count));
        if (batches > 0) DatasetStrips.Bench(o, data, batches, batchSize, workers, stepModel);
        return 0;
    }

    /// <summary>Samples per class where it is known without decoding (null for detection).</summary>
    static int[]? LabelCounts(IVideoDataset data)
    {
        var counts = new int[data.ClassNames.Count];
        switch (data)
        {
            case SyntheticActions a:
                for (int i = 0; i < a.Count; i++) counts[SyntheticActions.LabelOf(i, a.Options.Classes)]++;
                return counts;
            case VideoListDataset v:
                foreach (var e in v.List.Entries) if (e.Label < counts.Length) counts[e.Label]++;
                return counts;
            default:
                return null;
        }
    }

    static Command CreateMake()
    {
        var d = new DatasetOptions();
        var output = new Option<string>("--out") { Description = "output folder", Required = true };
        var format = new Option<string>("--format") { Description = "mp4 (H.264, lossy), mkv (FFV1, lossless) or png (frame folders, no ffmpeg needed)", DefaultValueFactory = _ => "mp4" };
        var crf = new Option<int>("--crf") { Description = "mp4: x264 quality, 0 (best) .. 51", DefaultValueFactory = _ => 10 };
        var fps = new Option<double>("--fps") { Description = "frame rate written into the videos and used for segment times", DefaultValueFactory = _ => 8.0 };
        var cmd = new Command("make", "write a synthetic dataset to disk as videos or frame folders, with list files" + TrainCommand.Examples(
            "sbp datasets make synthetic-actions --out data/actions --format png --train 64 --val 16",
            "sbp datasets make synthetic-detection --out data/det --format mp4")) { output, format, crf, fps };
        d.AddTo(cmd);
        cmd.SetAction(r =>
        {
            var o = r.InvocationConfiguration.Output;
            var spec = d.Spec(r);
            if (r.GetValue(format) is not ("mp4" or "mkv" or "png"))
                throw new ArgumentException($"--format '{r.GetValue(format)}' is not a format; use mp4, mkv or png.");
            if (r.GetValue(crf) is < 0 or > 51) throw new ArgumentException($"--crf {r.GetValue(crf)}: x264 quality must be in 0 (best) .. 51.");
            if (!(r.GetValue(fps) > 0 && double.IsFinite(r.GetValue(fps)))) throw new ArgumentException($"--fps {r.GetValue(fps)}: must be a number above 0.");
            if (!DatasetCatalog.BuiltIn.Any(b => string.Equals(b.Name, spec.Source, StringComparison.OrdinalIgnoreCase)))
                throw new ArgumentException($"dataset '{spec.Source}': `datasets make` writes a built-in synthetic dataset ({string.Join(", ", DatasetCatalog.BuiltIn.Select(b => b.Name))}).");
            var storage = r.GetValue(format) switch { "mkv" => VideoStorage.Ffv1, "png" => VideoStorage.Png, _ => VideoStorage.H264 };
            // detection videos are written whole: no window sampler on the synthetic source
            var writeSpec = string.Equals(spec.Source, DatasetCatalog.Detection, StringComparison.OrdinalIgnoreCase) ? spec with { Frames = null } : spec;
            string dir = OutputPaths.Folder("--out", r.GetValue(output)!, "the videos, list files and classes.txt");
            var train = Open(d, writeSpec, DataSplit.Train);
            var val = Open(d, writeSpec, DataSplit.Validation);
            int lastTenth = -1;
            var sw = Stopwatch.StartNew();
            var lockObj = new object();
            DatasetWriter.Write(dir, train, val, new DatasetWriterOptions
            {
                Storage = storage,
                Crf = r.GetValue(crf),
                FrameRate = r.GetValue(fps),
                Progress = (done, total) =>
                {
                    lock (lockObj)
                    {
                        int tenth = done * 10 / total;
                        if (tenth > lastTenth) { lastTenth = tenth; o.WriteLine($"  {done}/{total} videos"); }
                    }
                },
            });
            o.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"wrote {train.Count} train + {val.Count} val videos ({storage}) to {dir} in {sw.Elapsed.TotalSeconds:F1} s"));
            o.WriteLine($"read it back: sbp datasets show {dir} [--split val]");
            return 0;
        });
        return cmd;
    }
}
