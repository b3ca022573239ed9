namespace Sbp.Models.Data;

/// <summary>Knobs of <see cref="SyntheticDetection"/>.</summary>
public sealed record SyntheticDetectionOptions
{
    public int Count { get; init; } = 256;
    /// <summary>Frames per video.</summary>
    public int Frames { get; init; } = 96;
    public int Height { get; init; } = 32;
    public int Width { get; init; } = 32;
    /// <summary>Action classes (the first N of <see cref="SyntheticDetection.AllActionNames"/>), 1..6; label 0 is background.</summary>
    public int Classes { get; init; } = 4;
    public ulong Seed { get; init; } = 1;
    public float Noise { get; init; } = 0.05f;
    /// <summary>Motion per frame relative to the default (1).</summary>
    public float Speed { get; init; } = 1f;
    public float ObjectSize { get; init; } = 0.4f;
    /// <summary>Action segment length range in frames.</summary>
    public int MinSegment { get; init; } = 8;
    public int MaxSegment { get; init; } = 24;
    /// <summary>Background (still) gap length range in frames.</summary>
    public int MinGap { get; init; } = 4;
    public int MaxGap { get; init; } = 16;
    /// <summary>
    /// During an action the object also takes the action's colour (an appearance cue, as real actions
    /// have), so a per-frame backbone can see which action runs; false leaves motion as the only cue.
    /// </summary>
    public bool ActionTint { get; init; } = true;
    /// <summary>Rendered videos kept in memory (<see cref="SampleCache"/>; 0: render every time). Results do not depend on it.</summary>
    public long CacheBytes { get; init; } = 256L << 20;

    public void Validate()
    {
        Check(Count > 0, DataField.Count, $"count must be > 0 (got {Count})");
        Check(Height >= 8 && Width >= 8, DataField.Size, $"height and width must be >= 8 (got {Height}x{Width})");
        // a frame is rendered into one float array and a clip is one byte array
        Check((long)Height * Width * VideoClip.Channels <= Array.MaxLength, DataField.Size, $"a frame of {Height}x{Width}x{VideoClip.Channels} is more values than one array holds ({Array.MaxLength:N0})");
        Check((long)Frames * Height * Width * VideoClip.Channels <= Array.MaxLength, DataField.VideoFrames,
            $"a video of {Frames} frames of {Height}x{Width}x{VideoClip.Channels} is {(long)Frames * Height * Width * VideoClip.Channels:N0} values, more than one array holds ({Array.MaxLength:N0}); give fewer frames or a smaller size");
        Check(Classes >= 1 && Classes <= SyntheticDetection.AllActionNames.Count, DataField.Classes, $"classes must be in 1..{SyntheticDetection.AllActionNames.Count} (got {Classes})");
        Check(MinSegment >= 2 && MaxSegment >= MinSegment, DataField.Other, $"segment range must satisfy 2 <= min <= max (got {MinSegment}..{MaxSegment})");
        Check(MinGap >= 1 && MaxGap >= MinGap, DataField.Other, $"gap range must satisfy 1 <= min <= max (got {MinGap}..{MaxGap})");
        Check(Frames >= MaxGap + MaxSegment, DataField.VideoFrames, $"video frames ({Frames}) must hold at least one gap and one segment ({MaxGap + MaxSegment})");
        Check(Noise >= 0f && Noise <= 1f, DataField.Noise, $"noise must be in [0, 1] (got {Noise})");
        Check(Speed > 0f && Speed <= 3f, DataField.Speed, $"speed must be in (0, 3] (got {Speed})");
        Check(ObjectSize > 0.05f && ObjectSize <= 0.6f, DataField.ObjectSize, $"object size must be in (0.05, 0.6] (got {ObjectSize})");
        Check(CacheBytes >= 0, DataField.Other, $"cache bytes must be >= 0 (got {CacheBytes})");
    }

    static void Check(bool ok, DataField field, string message)
    {
        if (!ok) throw new DataOptionException(field, $"synthetic-detection: {message}");
    }
}

/// <summary>An action segment in frames: [Start, End) with an action class (0-based, without background).</summary>
public readonly record struct FrameSegment(int Start, int End, int Action);

/// <summary>
/// Seeded synthetic temporal action detection: long videos where one textured shape rests (background,
/// label 0) between action segments in which it moves right, left, down, up or rotates (label 1 + action).
/// Per-frame labels. Positions wrap on a torus and start uniformly, angles start uniformly, so a single
/// frame looks the same at rest and in every action; only motion between frames tells them apart.
/// Sample i of a split is a pure function of (seed, split, i). With a <see cref="ClipSampler"/> the
/// sample is a window of the video (labels follow the frames); without one, the whole video.
/// </summary>
public sealed class SyntheticDetection : IVideoDataset
{
    public static readonly IReadOnlyList<string> AllActionNames =
        ["move right", "move left", "move down", "move up", "rotate clockwise", "rotate counter-clockwise"];

    readonly string[] _classNames;

    /// <summary>The dataset; <paramref name="transform"/> says how clips become model input (default: the frames as they are, normalized).</summary>
    public SyntheticDetection(SyntheticDetectionOptions options, DataSplit split, ClipSampler? sampler = null, ClipTransform? transform = null)
    {
        options.Validate();
        Options = options;
        Split = split;
        Sampler = sampler;
        Transform = transform ?? ClipTransform.Resize(options.Height, options.Width);
        if (Transform.FlipProbability > 0)
            throw new ArgumentException("SyntheticDetection: no flips: a horizontal flip turns 'move right' into 'move left' (and clockwise into counter-clockwise).");
        _classNames = ["background", .. AllActionNames.Take(options.Classes)];
        Cache = new SampleCache(options.CacheBytes);
    }

    /// <summary>The rendered videos kept so far (<see cref="SyntheticDetectionOptions.CacheBytes"/>).</summary>
    public SampleCache Cache { get; }

    /// <summary>Renders every sample into <see cref="Cache"/> on all cores, when they all fit in it.</summary>
    public void Preload() =>
        Cache.Preload(Count, (long)Options.Frames * (Options.Height * Options.Width * VideoClip.Channels + sizeof(int)), Render);   // frames and per-frame labels

    public SyntheticDetectionOptions Options { get; }
    public DataSplit Split { get; }
    public ClipSampler? Sampler { get; }
    public int Count => Options.Count;
    public IReadOnlyList<string> ClassNames => _classNames;
    public bool PerFrameLabels => true;
    public int ClipFrames => Sampler?.Frames ?? Options.Frames;
    public ClipTransform Transform { get; }

    public string Describe() =>
        $"synthetic detection ({Split.Name()}): {Count} videos of {Options.Frames} frames {Options.Height}x{Options.Width}x3, " +
        $"{Options.Classes} action classes + background, segments {Options.MinSegment}-{Options.MaxSegment} frames, gaps {Options.MinGap}-{Options.MaxGap}, " +
        $"seed {Options.Seed}, noise {Options.Noise}, speed {Options.Speed}{(Options.ActionTint ? ", actions tinted" : ", motion only")}" + (Sampler is null ? "" : $", clips: {Sampler}");

    SampleRng RngOf(int index) => SampleRng.For(Options.Seed, "synthetic-detection/" + Split.Name(), index);

    /// <summary>The action segments of video <paramref name="index"/> (what `datasets make` writes as annotations).</summary>
    public IReadOnlyList<FrameSegment> Segments(int index) => Timeline(RngOf(index).Fork(10));

    List<FrameSegment> Timeline(SampleRng rng)
    {
        var o = Options;
        var segments = new List<FrameSegment>();
        int t = rng.Int(o.MaxGap - o.MinGap + 1) + o.MinGap;
        while (true)
        {
            int len = rng.Int(o.MaxSegment - o.MinSegment + 1) + o.MinSegment;
            int action = rng.Int(o.Classes);
            if (t + len > o.Frames) break;
            segments.Add(new FrameSegment(t, t + len, action));
            t += len + rng.Int(o.MaxGap - o.MinGap + 1) + o.MinGap;
        }
        return segments;
    }

    public VideoSample Get(int index, SampleRng? rng)
    {
        if ((uint)index >= (uint)Count) throw new ArgumentOutOfRangeException(nameof(index), $"SyntheticDetection: index {index} is outside 0..{Count - 1}.");
        var sample = Cache.GetOrRender(index, Render);   // the whole video; windows are copies
        if (Sampler is null) return sample;
        var window = sample.Select(Sampler.Sample(sample.Clip.Frames, rng));
        return window with { Label = SegmentDataset.MajorityAction(window.FrameLabels!) };
    }

    // One colour per action (pure hues), kept away from the resting objects' random colours by saturation.
    static readonly (float R, float G, float B)[] ActionColours =
        [(1f, 0.15f, 0.15f), (0.15f, 1f, 0.15f), (0.2f, 0.35f, 1f), (1f, 1f, 0.1f), (1f, 0.2f, 1f), (0.1f, 1f, 1f)];

    static ShapeRenderer.Look Tinted(in ShapeRenderer.Look look, int action)
    {
        var (r, g, b) = ActionColours[action % ActionColours.Length];
        return look with { R0 = r, G0 = g, B0 = b, R1 = 0.6f * r, G1 = 0.6f * g, B1 = 0.6f * b };
    }

    VideoSample Render(int index)
    {
        var o = Options;
        int T = o.Frames, H = o.Height, W = o.Width, side = Math.Min(H, W);
        var rng = RngOf(index);
        var segments = Timeline(rng.Fork(10));
        var labels = new int[T];
        var action = new int[T];
        Array.Fill(action, -1);
        foreach (var s in segments)
            for (int t = s.Start; t < s.End; t++) { labels[t] = 1 + s.Action; action[t] = s.Action; }

        var background = ShapeRenderer.Background(H, W, rng.Fork(1));
        var obj = ShapeRenderer.Look.Random(rng);
        float x = rng.Uniform(0, W), y = rng.Uniform(0, H), angle = rng.Uniform(0, MathF.Tau);
        float radius = o.ObjectSize * side * 0.5f * MathF.Exp(rng.Uniform(-0.25f, 0.25f));
        float step = o.Speed * side / 32f, spin = o.Speed * MathF.PI / 16f; // per frame: 1 px at 32x32, 11.25 degrees
        var noise = rng.Fork(3);

        var clip = new VideoClip(T, H, W);
        var frame = new float[checked(H * W * 3)];
        for (int t = 0; t < T; t++)
        {
            // the state moves between frames t-1 and t when frame t is inside a segment
            switch (action[t])
            {
                case 0: x += step; break;
                case 1: x -= step; break;
                case 2: y += step; break;
                case 3: y -= step; break;
                case 4: angle += spin; break;
                case 5: angle -= spin; break;
            }
            x = (x % W + W) % W;
            y = (y % H + H) % H;
            background.CopyTo(frame, 0);
            var look = o.ActionTint && action[t] >= 0 ? Tinted(obj, action[t]) : obj;
            ShapeRenderer.Draw(frame, H, W, look, new ShapeRenderer.Pose(x, y, angle, radius));
            ShapeRenderer.Quantize(frame, clip.Frame(t), o.Noise, noise.Fork(t));
        }
        return new VideoSample(clip, SegmentDataset.MajorityAction(labels), labels, $"{Split.Name()}/{index:D6}");
    }
}
