namespace Sbp.Models.Data;

public enum ClipSampling
{
    /// <summary>T consecutive frames with a stride (SlowFast/X3D style); random start in training, the centre window otherwise.</summary>
    Dense,
    /// <summary>T equal segments over the whole video, one frame from each (TSN/TSM style); random in training, each segment's middle otherwise.</summary>
    Uniform,
}

/// <summary>
/// Chooses which frames of a video make a clip. With an rng (training) the choice is random; with
/// none (evaluation) it is deterministic. Videos shorter than the clip repeat their last frame
/// (dense) or frames (uniform), so every clip has exactly <see cref="Frames"/> frames.
/// </summary>
public sealed class ClipSampler
{
    public ClipSampler(ClipSampling mode, int frames, int stride = 1)
    {
        if (frames <= 0) throw new ArgumentOutOfRangeException(nameof(frames), $"ClipSampler: frames must be > 0 (got {frames}).");
        if (stride <= 0) throw new ArgumentOutOfRangeException(nameof(stride), $"ClipSampler: stride must be > 0 (got {stride}).");
        Mode = mode;
        Frames = frames;
        Stride = mode == ClipSampling.Dense ? stride : 1;
    }

    public static ClipSampler Dense(int frames, int stride = 1) => new(ClipSampling.Dense, frames, stride);
    public static ClipSampler Uniform(int frames) => new(ClipSampling.Uniform, frames);

    public ClipSampling Mode { get; }
    public int Frames { get; }
    public int Stride { get; }

    /// <summary>Frame indices (ascending, in 0..videoFrames-1) of one clip of a video with <paramref name="videoFrames"/> frames.</summary>
    public int[] Sample(int videoFrames, SampleRng? rng)
    {
        if (videoFrames <= 0) throw new ArgumentOutOfRangeException(nameof(videoFrames), $"ClipSampler: the video has no frames ({videoFrames}).");
        var idx = new int[Frames];
        if (Mode == ClipSampling.Dense)
        {
            int span = (Frames - 1) * Stride + 1;
            int room = Math.Max(0, videoFrames - span);
            int start = rng is null ? room / 2 : rng.Int(room + 1);
            for (int i = 0; i < Frames; i++) idx[i] = Math.Min(start + i * Stride, videoFrames - 1);
        }
        else
        {
            for (int i = 0; i < Frames; i++)
            {
                // segment i is [i*N/T, (i+1)*N/T); an empty one (N < T) takes its start frame
                int lo = (int)((long)i * videoFrames / Frames), hi = (int)((long)(i + 1) * videoFrames / Frames);
                int len = Math.Max(1, hi - lo);
                idx[i] = Math.Min(videoFrames - 1, lo + (rng is null ? len / 2 : rng.Int(len)));
            }
        }
        return idx;
    }

    /// <summary>The first and last frame any clip can touch: what a decoder must read.</summary>
    public static (int First, int Last) Range(IReadOnlyList<int> indices) => (indices.Min(), indices.Max());

    public override string ToString() => Mode == ClipSampling.Dense ? $"dense {Frames}x{Stride}" : $"uniform {Frames}";

    /// <summary>Parses "dense:16:2", "dense:16" or "uniform:8".</summary>
    public static ClipSampler Parse(string text)
    {
        var parts = text.Split(':');
        try
        {
            return parts[0].ToLowerInvariant() switch
            {
                "dense" when parts.Length is 2 or 3 => Dense(int.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture),
                    parts.Length == 3 ? int.Parse(parts[2], System.Globalization.CultureInfo.InvariantCulture) : 1),
                "uniform" when parts.Length == 2 => Uniform(int.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture)),
                _ => throw new FormatException(),
            };
        }
        catch (FormatException)
        {
            throw new ArgumentException($"clip sampling '{text}' is not valid: use dense:FRAMES[:STRIDE] or uniform:FRAMES (e.g. dense:16:2).");
        }
    }
}
