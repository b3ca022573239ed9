namespace Sbp.Models.Data;

/// <summary>
/// Decoded frames in memory: 8-bit RGB, layout [T, H, W, 3] (frame-major, interleaved channels), the
/// layout ffmpeg's rgb24 and StbImage produce, so decoders copy nothing. Converted to float
/// [C, T, H, W] only when a batch is assembled (<see cref="ClipTransform"/>).
/// </summary>
public sealed class VideoClip
{
    public const int Channels = 3;

    public VideoClip(int frames, int height, int width, byte[]? data = null)
    {
        if (frames <= 0 || height <= 0 || width <= 0)
            throw new ArgumentException($"VideoClip: frames, height and width must be > 0 (got {frames}x{height}x{width}).");
        Frames = frames;
        Height = height;
        Width = width;
        long n = (long)frames * height * width * Channels;
        if (data is not null && data.LongLength != n)
            throw new ArgumentException($"VideoClip: {data.LongLength} bytes do not fill {frames} frames of {height}x{width}x3 ({n} bytes).");
        Data = data ?? new byte[n];
    }

    public int Frames { get; }
    public int Height { get; }
    public int Width { get; }
    public byte[] Data { get; }

    public int FrameBytes => Height * Width * Channels;

    public Span<byte> Frame(int t) => Data.AsSpan(t * FrameBytes, FrameBytes);

    /// <summary>The frames at <paramref name="indices"/> (repeats allowed), in that order.</summary>
    public VideoClip Select(IReadOnlyList<int> indices)
    {
        var c = new VideoClip(indices.Count, Height, Width);
        for (int i = 0; i < indices.Count; i++)
        {
            int t = indices[i];
            if ((uint)t >= (uint)Frames) throw new ArgumentOutOfRangeException(nameof(indices), $"VideoClip.Select: frame {t} is outside 0..{Frames - 1}.");
            Frame(t).CopyTo(c.Frame(i));
        }
        return c;
    }

    /// <summary>The frames in reverse time order.</summary>
    public VideoClip Reversed()
    {
        var idx = new int[Frames];
        for (int t = 0; t < Frames; t++) idx[t] = Frames - 1 - t;
        return Select(idx);
    }

    public override string ToString() => $"VideoClip({Frames} frames, {Height}x{Width}x3)";
}
