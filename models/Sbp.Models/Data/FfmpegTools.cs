using FFMpegCore;

namespace Sbp.Models.Data;

/// <summary>
/// Finds the ffmpeg and ffprobe programs (FFMpegCore runs them): the folder in SBP_FFMPEG_DIR if set,
/// else PATH. <see cref="Require"/> fails with how to install them.
/// </summary>
public static class FfmpegTools
{
    public const string InstallHint =
        "install ffmpeg (Debian/Ubuntu: sudo apt-get install -y ffmpeg; Fedora: sudo dnf install ffmpeg; macOS: brew install ffmpeg; " +
        "Windows: winget install ffmpeg or choco install ffmpeg) so that ffmpeg and ffprobe are on PATH, or set SBP_FFMPEG_DIR to the folder that holds them";

    static readonly Lazy<string?> Folder = new(FindFolder);

    /// <summary>True when both ffmpeg and ffprobe were found.</summary>
    public static bool IsAvailable => Folder.Value is not null;

    /// <summary>Why ffmpeg is unavailable (for test skips and errors); null when it is available.</summary>
    public static string? MissingReason => IsAvailable ? null : $"ffmpeg/ffprobe not found ({Where()}); {InstallHint}.";

    /// <summary>Options for FFMpegCore runs, pointing at the folder found.</summary>
    public static FFOptions Options => new() { BinaryFolder = Require() };

    /// <summary>The folder holding ffmpeg and ffprobe, or an <see cref="FfmpegMissingException"/> that says how to install them.</summary>
    public static string Require() => Folder.Value ?? throw new FfmpegMissingException($"sbp: {MissingReason}");

    static string Where() => Environment.GetEnvironmentVariable("SBP_FFMPEG_DIR") is { Length: > 0 } d ? $"looked in SBP_FFMPEG_DIR={d}" : "looked on PATH";

    static string? FindFolder() =>
        FindFolder(Environment.GetEnvironmentVariable("SBP_FFMPEG_DIR"), Environment.GetEnvironmentVariable("PATH"));

    /// <summary>The folder holding both programs: <paramref name="ffmpegDir"/> if given, else the first on <paramref name="path"/>.</summary>
    internal static string? FindFolder(string? ffmpegDir, string? path)
    {
        string exe = OperatingSystem.IsWindows() ? ".exe" : "";
        IEnumerable<string> dirs = ffmpegDir is { Length: > 0 } d
            ? [d]
            : (path ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries);
        foreach (var dir in dirs)
            if (File.Exists(Path.Combine(dir, "ffmpeg" + exe)) && File.Exists(Path.Combine(dir, "ffprobe" + exe)))
                return Path.GetFullPath(dir);
        return null;
    }
}
