namespace Sbp.Models.Data;

/// <summary>Knobs of <see cref="SyntheticActions"/>. Defaults: 8 classes, 16 frames of 32x32, learnable in minutes on a CPU.</summary>
public sealed record SyntheticActionsOptions
{
    public int Count { get; init; } = 1024;
    public int Frames { get; init; } = 16;
    public int Height { get; init; } = 32;
    public int Width { get; init; } = 32;
    /// <summary>How many of the <see cref="SyntheticActions.AllClassNames"/> to use (the first N), 2..11.</summary>
    public int Classes { get; init; } = 8;
    public ulong Seed { get; init; } = 1;
    /// <summary>Per-pixel, per-frame Gaussian noise (std, in [0, 1] intensity units). Harder when larger.</summary>
    public float Noise { get; init; } = 0.05f;
    /// <summary>Motion over the clip relative to the default (1). Harder when smaller.</summary>
    public float Speed { get; init; } = 1f;
    /// <summary>Object size as a fraction of the frame's shorter side. Harder when smaller.</summary>
    public float ObjectSize { get; init; } = 0.4f;
    /// <summary>Static textured shapes drawn into the background (clutter). Harder when more.</summary>
    public int Distractors { get; init; }
    /// <summary>Rendered clips kept in memory (<see cref="SampleCache"/>; 0: render every time). Results do not depend on it.</summary>
    public long CacheBytes { get; init; } = 256L << 20;

    public void Validate()
    {
        Check(Count > 0, DataField.Count, $"count must be > 0 (got {Count})");
        Check(Frames >= 4, DataField.Frames, $"frames must be >= 4 (got {Frames})");
        Check(Height >= 8 && Width >= 8, DataField.Size, $"height and width must be >= 8 (got {Height}x{Width})");
        // a frame is rendered into one float array and a clip is one byte array
        Check((long)Height * Width * VideoClip.Channels <= Array.MaxLength, DataField.Size, $"a frame of {Height}x{Width}x{VideoClip.Channels} is more values than one array holds ({Array.MaxLength:N0})");
        Check((long)Frames * Height * Width * VideoClip.Channels <= Array.MaxLength, DataField.Frames,
            $"a clip of {Frames} frames of {Height}x{Width}x{VideoClip.Channels} is {(long)Frames * Height * Width * VideoClip.Channels:N0} values, more than one array holds ({Array.MaxLength:N0}); give fewer frames or a smaller size");
        Check(Classes >= 2 && Classes <= SyntheticActions.AllClassNames.Count, DataField.Classes, $"classes must be in 2..{SyntheticActions.AllClassNames.Count} (got {Classes})");
        Check(Noise >= 0f && Noise <= 1f, DataField.Noise, $"noise must be in [0, 1] (got {Noise})");
        Check(Speed > 0f && Speed <= 3f, DataField.Speed, $"speed must be in (0, 3] (got {Speed})");
        Check(ObjectSize > 0.05f && ObjectSize <= 0.6f, DataField.ObjectSize, $"object size must be in (0.05, 0.6] (got {ObjectSize})");
        Check(Distractors >= 0 && Distractors <= 8, DataField.Distractors, $"distractors must be in 0..8 (got {Distractors})");
        Check(CacheBytes >= 0, DataField.Other, $"cache bytes must be >= 0 (got {CacheBytes})");
    }

    static void Check(bool ok, DataField field, string message)
    {
        if (!ok) throw new DataOptionException(field, $"synthetic-actions: {message}");
    }
}

/// <summary>
/// Seeded synthetic action recognition: one textured shape (square, triangle, disk or cross with
/// stripes) moves on a static textured background with per-frame pixel noise; the class is the motion
/// over time. Sample i of a split is a pure function of (seed, split, i); class = i mod classes.
/// <para>
/// Why a single frame cannot tell the class: positions live on a torus and start uniformly, angles
/// start uniformly and the scale of the non-scaling classes is drawn from the scaling classes'
/// distribution at a uniformly random frame, so a frame taken at a random time has the same
/// distribution in every class. Classes come in time-reversed pairs (right/left, down/up,
/// clockwise/counter-clockwise, approach/recede, speed up/slow down): for the same random draw the
/// second's frames are exactly the first's in reverse order, so even the set of all frames of a clip
/// cannot separate a pair; only their order can. "bounce" (go and come back) is its own reverse.
/// </para>
/// Motions are normalized over the clip (total travel 3/4 of the frame's shorter side, half a turn,
/// scale x2.2 at speed 1), so the frame count changes smoothness, not difficulty.
/// A horizontal flip turns "right" into "left" and clockwise into counter-clockwise: flips (`--flip on`) relabel the
/// clip (<see cref="MirroredLabel"/>); so does time reversal (`--reverse on`, <see cref="ReversedLabel"/>).
/// </summary>
public sealed class SyntheticActions : IVideoDataset
{
    public static readonly IReadOnlyList<string> AllClassNames =
    [
        "move right", "move left", "move down", "move up",
        "rotate clockwise", "rotate counter-clockwise", "approach", "recede",
        "speed up", "slow down", "bounce",
    ];

    enum Motion { Right, Down, Clockwise, Approach, SpeedUp, Bounce }

    // class -> (motion of the forward member, whether this class plays it backwards)
    static readonly (Motion Motion, bool Reversed)[] ClassMotion =
    [
        (Motion.Right, false), (Motion.Right, true), (Motion.Down, false), (Motion.Down, true),
        (Motion.Clockwise, false), (Motion.Clockwise, true), (Motion.Approach, false), (Motion.Approach, true),
        (Motion.SpeedUp, false), (Motion.SpeedUp, true), (Motion.Bounce, false),
    ];

    const float ScaleRange = 0.25f;       // log-radius of the middle frame: uniform in [-0.25, 0.25]
    const float ScaleTravel = 0.8f;       // log-radius change over the clip for approach/recede (x2.2)

    readonly string[] _classNames;

    /// <summary>The dataset; <paramref name="transform"/> says how clips become model input (default: the frames as they are, normalized).</summary>
    public SyntheticActions(SyntheticActionsOptions options, DataSplit split, ClipTransform? transform = null)
    {
        options.Validate();
        Options = options;
        Split = split;
        Transform = transform ?? ClipTransform.Resize(options.Height, options.Width);
        _classNames = AllClassNames.Take(options.Classes).ToArray();
        Cache = new SampleCache(options.CacheBytes);
        if (Transform.FlipProbability > 0) CheckClosed(MirrorOf, DataField.Flip, "a flip", "flips");
        if (Transform.ReverseProbability > 0) CheckClosed(ReversePartner, DataField.Reverse, "time reversal", "time reversal");
    }

    /// <summary>A flip or reversal must map every class in use to a class in use (8 classes: yes; 9: "speed up" has no "slow down").</summary>
    void CheckClosed(Func<int, int> map, DataField field, string what, string option)
    {
        int n = Options.Classes;
        if (Enumerable.Range(0, n).FirstOrDefault(c => map(c) >= n, -1) is var lone and >= 0)
            throw new DataOptionException(field, $"synthetic-actions: {what} turns '{AllClassNames[lone]}' into '{AllClassNames[map(lone)]}', " +
                $"which is not among the {n} classes; use {n - 1} or {n + 1} classes, or leave {option} off");
    }

    public SyntheticActionsOptions Options { get; }
    public DataSplit Split { get; }
    public int Count => Options.Count;
    public IReadOnlyList<string> ClassNames => _classNames;
    public bool PerFrameLabels => false;
    public int ClipFrames => Options.Frames;
    public ClipTransform Transform { get; }

    /// <summary>
    /// The class of a horizontally flipped clip of class <paramref name="cls"/>: right and left swap, clockwise and
    /// counter-clockwise swap; vertical motion, scaling, speed change and bounce keep their class.
    /// </summary>
    public static int MirrorOf(int cls) => ClassMotion[cls].Motion is Motion.Right or Motion.Clockwise ? cls ^ 1 : cls;

    public int MirroredLabel(int label) => MirrorOf(label);

    /// <summary>The partner class whose clips are this class's clips played backwards (itself for bounce).</summary>
    public static int ReversePartner(int cls) => cls == 10 ? 10 : cls ^ 1;

    /// <summary>A clip played backwards is exactly its reverse partner's clip for the same draw (`--reverse on` relabels with it).</summary>
    public int? ReversedLabel(int label) => ReversePartner(label);

    public static int LabelOf(int index, int classes) => index % classes;

    public string Describe() =>
        $"synthetic actions ({Split.Name()}): {Count} clips of {Options.Frames} frames {Options.Height}x{Options.Width}x3, " +
        $"{Options.Classes} classes, seed {Options.Seed}, noise {Options.Noise}, speed {Options.Speed}, object size {Options.ObjectSize}, distractors {Options.Distractors}";

    /// <summary>The rendered clips kept so far (<see cref="SyntheticActionsOptions.CacheBytes"/>).</summary>
    public SampleCache Cache { get; }

    /// <summary>Renders every sample into <see cref="Cache"/> on all cores, when they all fit in it.</summary>
    public void Preload() => Cache.Preload(Count, (long)Options.Frames * Options.Height * Options.Width * VideoClip.Channels, RenderSample);

    /// <summary>
    /// Sample <paramref name="index"/>; <paramref name="rng"/> is unused (the clip is the whole sample). Rendered once and
    /// then served from <see cref="Cache"/> while it has room: rendering costs about 3 ms a clip, every epoch otherwise.
    /// </summary>
    public VideoSample Get(int index, SampleRng? rng)
    {
        if ((uint)index >= (uint)Count) throw new ArgumentOutOfRangeException(nameof(index), $"SyntheticActions: index {index} is outside 0..{Count - 1}.");
        return Cache.GetOrRender(index, RenderSample);
    }

    VideoSample RenderSample(int index)
    {
        int label = LabelOf(index, Options.Classes);
        var clip = Render(label, SampleRng.For(Options.Seed, "synthetic-actions/" + Split.Name(), index));
        return new VideoSample(clip, label, null, $"{Split.Name()}/{index:D6}");
    }

    /// <summary>Renders class <paramref name="cls"/> for the random draw <paramref name="rng"/> (the same draw for both members of a pair).</summary>
    internal VideoClip Render(int cls, SampleRng rng)
    {
        var o = Options;
        int T = o.Frames, H = o.Height, W = o.Width, side = Math.Min(H, W);
        var (motion, reversed) = ClassMotion[cls];

        // Everything is drawn in the same order for every class so that a pair shares its draw.
        var background = ShapeRenderer.Background(H, W, rng.Fork(1));
        var clutter = rng.Fork(2);
        for (int d = 0; d < o.Distractors; d++)
        {
            var look = ShapeRenderer.Look.Random(clutter, 0.3f, 0.8f); // clutter: between background and object brightness
            var pose = new ShapeRenderer.Pose(clutter.Uniform(0, W), clutter.Uniform(0, H), clutter.Uniform(0, MathF.Tau), side * clutter.Uniform(0.08f, 0.16f));
            ShapeRenderer.Draw(background, H, W, look, pose);
        }
        var obj = ShapeRenderer.Look.Random(rng);
        float x0 = rng.Uniform(0, W), y0 = rng.Uniform(0, H), angle0 = rng.Uniform(0, MathF.Tau);
        float logScale = rng.Uniform(-ScaleRange, ScaleRange);
        float randomFrameTau = rng.Int(T) / (float)(T - 1);
        float dirAngle = rng.Uniform(0, MathF.Tau);
        float gain = o.Speed * rng.Uniform(0.8f, 1.2f);
        float travel = 0.75f * side * gain, turn = MathF.PI * gain, grow = ScaleTravel * gain;
        float radius0 = o.ObjectSize * side * 0.5f;
        var noise = rng.Fork(3);

        var clip = new VideoClip(T, H, W);
        var frame = new float[checked(H * W * 3)];
        for (int s = 0; s < T; s++)
        {
            float tau = s / (float)(T - 1);
            float x = x0, y = y0, angle = angle0;
            // non-scaling classes: the scale approach/recede have at a uniformly random frame
            float ls = logScale + grow * (randomFrameTau - 0.5f);
            switch (motion)
            {
                case Motion.Right: x += travel * tau; break;
                case Motion.Down: y += travel * tau; break;
                case Motion.Clockwise: angle += turn * tau; break;
                case Motion.Approach: ls = logScale + grow * (tau - 0.5f); break;
                case Motion.SpeedUp:
                    x += travel * tau * tau * MathF.Cos(dirAngle);
                    y += travel * tau * tau * MathF.Sin(dirAngle);
                    break;
                case Motion.Bounce:
                    float b = 0.75f * travel * (1f - Math.Abs(2f * tau - 1f));
                    x += b * MathF.Cos(dirAngle);
                    y += b * MathF.Sin(dirAngle);
                    break;
            }
            background.CopyTo(frame, 0);
            // cap the radius so a grown object never wraps onto itself (same cap for every class: marginals stay equal)
            ShapeRenderer.Draw(frame, H, W, obj, new ShapeRenderer.Pose(x, y, angle, Math.Min(radius0 * MathF.Exp(ls), 0.42f * side)));
            // noise follows the state index s, so the reversed class gets exactly the same frames
            int t = reversed ? T - 1 - s : s;
            ShapeRenderer.Quantize(frame, clip.Frame(t), o.Noise, noise.Fork(s));
        }
        return clip;
    }
}
