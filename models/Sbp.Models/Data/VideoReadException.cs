namespace Sbp.Models.Data;

/// <summary>A video or frame folder that cannot be read (missing, corrupt, undecodable). Names the file; loaders count and skip these by policy.</summary>
public class VideoReadException(string path, string message, Exception? inner = null)
    : IOException($"{path}: {message}", inner)
{
    public string Path { get; } = path;
}

/// <summary>ffmpeg/ffprobe are not installed or not found; the message says how to install them.</summary>
public sealed class FfmpegMissingException(string message) : InvalidOperationException(message);
