namespace Sbp.Models.Data;

/// <summary>What a decoder knows about a video before decoding it (<paramref name="Codec"/>: ffprobe's codec name, empty when unknown).</summary>
public readonly record struct VideoInfo(int Frames, double FrameRate, int Height, int Width, string Codec = "");

/// <summary>
/// Reads frames of one video (a video file or a folder of images). Implementations throw
/// <see cref="VideoReadException"/> for an unreadable input and are safe to use from several threads.
/// </summary>
public interface IFrameSource
{
    VideoInfo Probe(string path);

    /// <summary>
    /// The frames at <paramref name="indices"/> (ascending, repeats allowed), resized so the shorter
    /// side is <paramref name="shortSide"/> (keeping the aspect ratio; 0 = native size).
    /// </summary>
    VideoClip Read(string path, IReadOnlyList<int> indices, int shortSide);
}

static class FrameSize
{
    /// <summary>Output size for a short side of <paramref name="shortSide"/> (0 = unchanged), keeping the aspect ratio.</summary>
    public static (int Height, int Width) Scaled(int height, int width, int shortSide)
    {
        if (shortSide <= 0) return (height, width);
        return height <= width
            ? (shortSide, Math.Max(1, (int)Math.Round((double)width * shortSide / height)))
            : (Math.Max(1, (int)Math.Round((double)height * shortSide / width)), shortSide);
    }
}
