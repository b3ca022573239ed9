using System.Globalization;
using FFMpegCore;
using StbImageWriteSharp;

namespace Sbp.Models.Data;

/// <summary>How <see cref="DatasetWriter"/> stores videos.</summary>
public enum VideoStorage
{
    /// <summary>H.264 in .mp4 (libx264, yuv444p, constant quality <see cref="DatasetWriterOptions.Crf"/>).</summary>
    H264,
    /// <summary>FFV1 in .mkv: lossless, pixels read back exactly.</summary>
    Ffv1,
    /// <summary>A folder of PNG frames per video (StbImageWriteSharp; no ffmpeg needed).</summary>
    Png,
}

public sealed record DatasetWriterOptions
{
    public VideoStorage Storage { get; init; } = VideoStorage.H264;
    /// <summary>x264 constant rate factor: 0 best, 51 worst; 10 keeps pixels within a few levels.</summary>
    public int Crf { get; init; } = 10;
    /// <summary>Frame rate written into the videos (and used for the seconds in segment annotations).</summary>
    public double FrameRate { get; init; } = 8;
    /// <summary>Videos encoded at once.</summary>
    public int Parallelism { get; init; } = Math.Max(1, Environment.ProcessorCount);
    /// <summary>Called after each video with (done, total).</summary>
    public Action<int, int>? Progress { get; init; }
}

/// <summary>
/// Writes a dataset to disk in the formats the real loaders read, so they can be exercised without
/// any download:
/// <code>
/// DIR/dataset.txt            key=value description (read by `sbp datasets show DIR`)
/// DIR/classes.txt            class names, line i = label i (detection: action classes, background excluded)
/// DIR/train.txt, val.txt     list files: "train/000000.mp4 LABEL" (videos) or "train/000000 FRAMES LABEL" (PNG folders)
/// DIR/train_segments.txt,    detection only: "train/000000.mp4 START END LABEL", seconds at the written
///   val_segments.txt         frame rate, LABEL = action class (per-frame label 1 + LABEL, background 0)
/// DIR/train/..., DIR/val/... the videos (000000.mp4, .mkv) or frame folders (000000/img_00001.png, ...)
/// </code>
/// </summary>
public static class DatasetWriter
{
    public const string InfoFile = "dataset.txt";

    public static void Write(string dir, IVideoDataset train, IVideoDataset val, DatasetWriterOptions options)
    {
        if (options.Storage != VideoStorage.Png) FfmpegTools.Require();
        if (train.PerFrameLabels != val.PerFrameLabels) throw new ArgumentException("DatasetWriter: train and val must be the same kind of dataset.");
        Directory.CreateDirectory(dir);
        bool detection = train.PerFrameLabels;
        var names = detection ? train.ClassNames.Skip(1) : train.ClassNames;
        File.WriteAllLines(Path.Combine(dir, "classes.txt"), names);
        int total = train.Count + val.Count, done = 0;
        foreach (var (split, data) in new[] { ("train", train), ("val", val) })
        {
            Directory.CreateDirectory(Path.Combine(dir, split));
            var lines = new string[data.Count];
            var segLines = new List<string>[data.Count];
            Parallel.For(0, data.Count, new ParallelOptions { MaxDegreeOfParallelism = options.Parallelism }, i =>
            {
                var sample = data.Get(i, null);
                string rel = $"{split}/{i:D6}";
                string relPath = options.Storage switch
                {
                    VideoStorage.H264 => rel + ".mp4",
                    VideoStorage.Ffv1 => rel + ".mkv",
                    _ => rel,
                };
                WriteVideo(Path.Combine(dir, relPath), sample.Clip, options);
                lines[i] = options.Storage == VideoStorage.Png
                    ? $"{relPath} {sample.Clip.Frames} {sample.Label}"
                    : $"{relPath} {sample.Label}";
                if (detection) segLines[i] = Segments(sample.FrameLabels!).Select(s => string.Create(CultureInfo.InvariantCulture,
                    $"{relPath} {s.Start / options.FrameRate:0.######} {s.End / options.FrameRate:0.######} {s.Action}")).ToList();
                options.Progress?.Invoke(Interlocked.Increment(ref done), total);
            });
            File.WriteAllLines(Path.Combine(dir, split + ".txt"), lines);
            if (detection) File.WriteAllLines(Path.Combine(dir, split + "_segments.txt"), segLines.SelectMany(l => l));
        }
        var sample0 = train.Get(0, null);
        File.WriteAllLines(Path.Combine(dir, InfoFile),
        [
            $"kind={(detection ? "detection" : "actions")}",
            $"storage={options.Storage.ToString().ToLowerInvariant()}",
            $"train={train.Count}",
            $"val={val.Count}",
            $"classes={names.Count()}",
            $"frames={sample0.Clip.Frames}",
            $"height={sample0.Clip.Height}",
            $"width={sample0.Clip.Width}",
            string.Create(CultureInfo.InvariantCulture, $"fps={options.FrameRate}"),
            $"crf={(options.Storage == VideoStorage.H264 ? options.Crf.ToString(CultureInfo.InvariantCulture) : "lossless")}",
            $"source={train.Describe()}",
        ]);
    }

    /// <summary>Runs of equal non-zero per-frame labels as [start, end) frame segments with action = label - 1.</summary>
    public static List<FrameSegment> Segments(int[] frameLabels)
    {
        var list = new List<FrameSegment>();
        for (int t = 0; t < frameLabels.Length;)
        {
            int l = frameLabels[t], s = t;
            while (t < frameLabels.Length && frameLabels[t] == l) t++;
            if (l != 0) list.Add(new FrameSegment(s, t, l - 1));
        }
        return list;
    }

    /// <summary>Writes one clip as a video file (by extension .mp4/.mkv: H.264/FFV1) or, for Png storage, a frame folder.</summary>
    public static void WriteVideo(string path, VideoClip clip, DatasetWriterOptions options)
    {
        if (options.Storage == VideoStorage.Png)
        {
            Directory.CreateDirectory(path);
            var writer = new ImageWriter();
            for (int t = 0; t < clip.Frames; t++)
            {
                using var f = File.Create(Path.Combine(path, $"img_{t + 1:D5}.png"));
                writer.WritePng(clip.Frame(t).ToArray(), clip.Width, clip.Height, ColorComponents.RedGreenBlue, f);
            }
            return;
        }
        // raw frames go through a temporary file: piped input is unreliable with ffmpeg < 8 on Linux (FFMpegCore's README)
        string raw = path + ".rgb.tmp";
        try
        {
            File.WriteAllBytes(raw, clip.Data);
            string codec = options.Storage == VideoStorage.H264
                ? $"-c:v libx264 -preset medium -crf {options.Crf} -pix_fmt yuv444p"
                : "-c:v ffv1 -level 3 -pix_fmt bgr0";
            var result = FFMpegArguments
                .FromFileInput(raw, verifyExists: true, o => o.WithCustomArgument(string.Create(CultureInfo.InvariantCulture,
                    $"-f rawvideo -pix_fmt rgb24 -video_size {clip.Width}x{clip.Height} -framerate {options.FrameRate}")))
                .OutputToFile(path, overwrite: true, o => o.WithCustomArgument($"-an {codec}"))
                .ProcessSynchronously(throwOnError: false, ffOptions: FfmpegTools.Options);
            if (!result.Success)
                throw new IOException($"ffmpeg could not write {path} (exit code {result.ExitCode}): {string.Join(" | ", result.StandardError.TakeLast(3))}");
        }
        finally
        {
            File.Delete(raw);
        }
    }

    /// <summary>The key=value lines of a written dataset's <see cref="InfoFile"/>.</summary>
    public static Dictionary<string, string> ReadInfo(string dir)
    {
        var file = Path.Combine(dir, InfoFile);
        if (!File.Exists(file)) throw new FileNotFoundException($"{dir} is not a dataset written by `sbp datasets make` (no {InfoFile})", file);
        return File.ReadLines(file).Select(l => l.Split('=', 2)).Where(p => p.Length == 2).ToDictionary(p => p[0], p => p[1], StringComparer.Ordinal);
    }
}
