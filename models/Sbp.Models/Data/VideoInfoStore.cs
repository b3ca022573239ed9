using System.Collections.Concurrent;
using System.Globalization;

namespace Sbp.Models.Data;

/// <summary>
/// What ffprobe said about video files, and the decodable frame counts found where a header lied, kept
/// across runs in a tab-separated file keyed by full path, size and modification time (a changed file is
/// probed again). Probing costs one ffprobe process per video (~0.15 s here), so a second run over the same
/// list starts decoding at once. Lines are appended (several processes may share the file); the last line
/// for a key wins. A file that cannot be written leaves the store in memory only. Thread-safe.
/// </summary>
public sealed class VideoInfoStore
{
    readonly ConcurrentDictionary<string, (long Size, long Time, VideoInfo Info, bool Counted)> _entries = new(StringComparer.Ordinal);
    readonly object _writeLock = new();
    bool _writeFailed;

    /// <param name="file">The store's file (created when needed); null keeps it in memory only.</param>
    public VideoInfoStore(string? file)
    {
        File = file;
        if (file is null || !System.IO.File.Exists(file)) return;
        try
        {
            foreach (var line in System.IO.File.ReadLines(file))
                if (Parse(line) is { } e) _entries[e.Path] = (e.Size, e.Time, e.Info, e.Counted);
        }
        catch (IOException) { }           // unreadable: start empty, probe again
        catch (UnauthorizedAccessException) { }
    }

    /// <summary>The store's file, or null in memory.</summary>
    public string? File { get; }

    /// <summary>
    /// The default file: $SBP_CACHE_DIR/video-info.tsv, else $XDG_CACHE_HOME/sbp/, else ~/.cache/sbp/
    /// (on Windows %LOCALAPPDATA%\sbp\).
    /// </summary>
    public static string DefaultFile()
    {
        string? dir = Environment.GetEnvironmentVariable("SBP_CACHE_DIR") is { Length: > 0 } d ? d
            : Environment.GetEnvironmentVariable("XDG_CACHE_HOME") is { Length: > 0 } x ? Path.Combine(x, "sbp")
            : OperatingSystem.IsWindows() ? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData), "sbp")
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "sbp");
        return Path.Combine(dir, "video-info.tsv");
    }

    /// <summary>The stored facts of <paramref name="path"/> if the file has not changed since; <paramref name="counted"/>: its frame count was found by decoding.</summary>
    public bool TryGet(string path, out VideoInfo info, out bool counted)
    {
        var full = Path.GetFullPath(path);
        var (size, time) = Stamp(full);
        if (_entries.TryGetValue(full, out var e) && e.Size == size && e.Time == time)
        {
            (info, counted) = (e.Info, e.Counted);
            return true;
        }
        (info, counted) = (default, false);
        return false;
    }

    /// <summary>Records the facts of <paramref name="path"/> as it is now.</summary>
    public void Put(string path, VideoInfo info, bool counted)
    {
        var full = Path.GetFullPath(path);
        var (size, time) = Stamp(full);
        _entries[full] = (size, time, info, counted);
        if (File is null) return;
        string line = string.Create(CultureInfo.InvariantCulture,
            $"{size}\t{time}\t{info.Frames}\t{info.FrameRate:R}\t{info.Height}\t{info.Width}\t{(counted ? 1 : 0)}\t{info.Codec}\t{full}\n");
        lock (_writeLock)
        {
            if (_writeFailed) return;
            try
            {
                Directory.CreateDirectory(Path.GetDirectoryName(File)!);
                System.IO.File.AppendAllText(File, line);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                _writeFailed = true; // read-only home or full disk: keep going in memory
            }
        }
    }

    static (long Size, long Time) Stamp(string full)
    {
        var fi = new FileInfo(full);
        return fi.Exists ? (fi.Length, fi.LastWriteTimeUtc.Ticks) : (-1, -1);
    }

    static (string Path, long Size, long Time, VideoInfo Info, bool Counted)? Parse(string line)
    {
        var f = line.Split('\t', 9);
        var inv = CultureInfo.InvariantCulture;
        if (f.Length == 9 && long.TryParse(f[0], inv, out long size) && long.TryParse(f[1], inv, out long time) &&
            int.TryParse(f[2], inv, out int frames) && double.TryParse(f[3], NumberStyles.Float, inv, out double fps) &&
            int.TryParse(f[4], inv, out int h) && int.TryParse(f[5], inv, out int w) && f[6] is "0" or "1" &&
            frames > 0 && fps > 0 && h > 0 && w > 0)
            return (f[8], size, time, new VideoInfo(frames, fps, h, w, f[7]), f[6] == "1");
        return null; // a torn or foreign line: ignored
    }
}
