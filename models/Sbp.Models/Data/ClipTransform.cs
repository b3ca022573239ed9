namespace Sbp.Models.Data;

/// <summary>
/// Spatial augmentation and conversion of a <see cref="VideoClip"/> (bytes [T, H, W, 3]) into the
/// model's float layout [C, T, H, W]: one crop box and one flip per clip (all frames alike, so motion
/// is preserved), bilinear resize, then (x / 255 - mean[c]) / std[c].
/// Training (an rng): with <see cref="RandomCrop"/> a random resized crop (area fraction in [MinScale,
/// MaxScale] of the frame, aspect ratio log-uniform in [MinRatio, MaxRatio]), else the centre crop; and a
/// horizontal flip with probability FlipProbability, and the frames in reverse order with probability
/// ReverseProbability.
/// Evaluation (no rng): the centre crop covering CenterCropFraction of the shorter side, no flip, no reversal.
/// </summary>
public sealed record ClipTransform
{
    public int Height { get; init; } = 32;
    public int Width { get; init; } = 32;
    /// <summary>Training crops a random box (torchvision's RandomResizedCrop); off: the centre crop, as in evaluation.</summary>
    public bool RandomCrop { get; init; }
    public float MinScale { get; init; } = 1f;
    public float MaxScale { get; init; } = 1f;
    public float MinRatio { get; init; } = 3f / 4f;
    public float MaxRatio { get; init; } = 4f / 3f;
    /// <summary>0 for datasets whose classes have a left/right sense (<see cref="SyntheticActions"/>).</summary>
    public float FlipProbability { get; init; }
    /// <summary>
    /// Time reversal in training: only for datasets that say what a reversed clip's class is
    /// (<see cref="IVideoDataset.ReversedLabel"/>; synthetic actions: each class's reverse partner). 0 by default.
    /// </summary>
    public float ReverseProbability { get; init; }
    public float CenterCropFraction { get; init; } = 1f;
    public float[] Mean { get; init; } = [0.45f, 0.45f, 0.45f];
    public float[] Std { get; init; } = [0.225f, 0.225f, 0.225f];

    /// <summary>Resize only (no crop, no flip), with the default normalization.</summary>
    public static ClipTransform Resize(int height, int width) => new() { Height = height, Width = width };

    /// <summary>Kinetics-style training augmentation: random resized crop (8%..100% area) and flips.</summary>
    public static ClipTransform KineticsTrain(int size) => new() { Height = size, Width = size, RandomCrop = true, MinScale = 0.08f, FlipProbability = 0.5f };

    /// <summary>
    /// The standard video recipe for frames decoded at a short side of <paramref name="shortSide"/> (0: native):
    /// training takes a random resized crop of at least <paramref name="minArea"/> of the frame (1: the centre
    /// crop) and flips with probability 0.5 when <paramref name="flip"/>; evaluation takes the centre
    /// <paramref name="size"/> x <paramref name="size"/> pixels (Video Swin: short side 256, crop 224).
    /// </summary>
    public static ClipTransform Video(int size, int shortSide, float minArea, bool flip) => new()
    {
        Height = size,
        Width = size,
        RandomCrop = minArea < 1f,
        MinScale = minArea,
        FlipProbability = flip ? 0.5f : 0f,
        CenterCropFraction = shortSide > 0 ? Math.Min(1f, size / (float)shortSide) : 1f,
    };

    /// <summary>The recipe in one line (for `sbp datasets show` and training logs).</summary>
    public string Describe()
    {
        var inv = System.Globalization.CultureInfo.InvariantCulture;
        string crop = RandomCrop
            ? string.Create(inv, $"random resized crop (area {MinScale:0.###}..{MaxScale:0.###}, aspect {MinRatio:0.###}..{MaxRatio:0.###})")
            : "centre crop";
        string centre = CenterCropFraction < 1f ? string.Create(inv, $"centre {CenterCropFraction:P1} of the short side") : "centre crop of the whole short side";
        return string.Create(inv, $"{Height}x{Width}; train: {crop}{(FlipProbability > 0 ? $", flip p={FlipProbability:0.##}" : ", no flip")}{(ReverseProbability > 0 ? $", time reversal p={ReverseProbability:0.##}" : "")}; eval: {centre}; ") +
               string.Create(inv, $"normalize mean {string.Join(",", Mean.Select(m => m.ToString("0.###", inv)))} std {string.Join(",", Std.Select(m => m.ToString("0.###", inv)))}");
    }

    public int FloatsPerClip(int frames) => checked(VideoClip.Channels * frames * Height * Width);

    /// <summary>
    /// Writes the clip as [C, T, Height, Width] floats into <paramref name="dst"/>; says whether it flipped or reversed the
    /// clip (the label may need mapping: <see cref="IVideoDataset.MirroredLabel"/>, <see cref="IVideoDataset.ReversedLabel"/>).
    /// </summary>
    public ClipChanges Apply(VideoClip clip, Span<float> dst, SampleRng? rng)
    {
        Validate();
        int T = clip.Frames, oh = Height, ow = Width, ih = clip.Height, iw = clip.Width;
        if (dst.Length != FloatsPerClip(T))
            throw new ArgumentException($"ClipTransform.Apply: destination has {dst.Length} floats, [3, {T}, {oh}, {ow}] needs {FloatsPerClip(T)}.");
        var (cx, cy, cw, ch) = rng is not null && RandomCrop ? RandomBox(ih, iw, rng) : CenterBox(ih, iw);
        bool flip = rng is not null && FlipProbability > 0f && rng.Bernoulli(FlipProbability);
        bool reverse = rng is not null && ReverseProbability > 0f && rng.Bernoulli(ReverseProbability);   // drawn only when asked for: other rng streams stay as they were

        // per output column / row: the two source taps and the weight of the second
        var x0 = new int[ow]; var x1 = new int[ow]; var wx = new float[ow];
        var y0 = new int[oh]; var y1 = new int[oh]; var wy = new float[oh];
        Taps(cx, cw, ow, iw, flip, x0, x1, wx);
        Taps(cy, ch, oh, ih, false, y0, y1, wy);

        var scale = new float[3]; var shift = new float[3];
        for (int c = 0; c < 3; c++) { scale[c] = 1f / (255f * Std[c]); shift[c] = -Mean[c] / Std[c]; }
        var src = clip.Data;
        int plane = T * oh * ow;
        for (int t = 0; t < T; t++)
        {
            int fo = (reverse ? T - 1 - t : t) * ih * iw * 3;
            for (int y = 0; y < oh; y++)
            {
                int r0 = fo + y0[y] * iw * 3, r1 = fo + y1[y] * iw * 3;
                float b = wy[y], a = 1f - b;
                int o = (t * oh + y) * ow;
                for (int x = 0; x < ow; x++)
                {
                    int p00 = r0 + x0[x] * 3, p01 = r0 + x1[x] * 3, p10 = r1 + x0[x] * 3, p11 = r1 + x1[x] * 3;
                    float d = wx[x], e = 1f - d;
                    for (int c = 0; c < 3; c++)
                    {
                        float v = a * (e * src[p00 + c] + d * src[p01 + c]) + b * (e * src[p10 + c] + d * src[p11 + c]);
                        dst[c * plane + o + x] = v * scale[c] + shift[c];
                    }
                }
            }
        }
        return (flip ? ClipChanges.Flipped : 0) | (reverse ? ClipChanges.Reversed : 0);
    }

    void Validate()
    {
        if (Height <= 0 || Width <= 0) throw new ArgumentException($"ClipTransform: output size must be > 0 (got {Height}x{Width}).");
        if (!(MinScale > 0f && MinScale <= MaxScale && MaxScale <= 1f)) throw new ArgumentException($"ClipTransform: need 0 < MinScale <= MaxScale <= 1 (got {MinScale}, {MaxScale}).");
        if (!(MinRatio > 0f && MinRatio <= MaxRatio)) throw new ArgumentException($"ClipTransform: need 0 < MinRatio <= MaxRatio (got {MinRatio}, {MaxRatio}).");
        if (Mean.Length != 3 || Std.Length != 3 || Std.Any(s => s <= 0f)) throw new ArgumentException("ClipTransform: Mean and Std need 3 values, Std > 0.");
        if (!(CenterCropFraction > 0f && CenterCropFraction <= 1f)) throw new ArgumentException($"ClipTransform: CenterCropFraction must be in (0, 1] (got {CenterCropFraction}).");
        if (!(FlipProbability >= 0f && FlipProbability <= 1f && ReverseProbability >= 0f && ReverseProbability <= 1f))
            throw new ArgumentException($"ClipTransform: FlipProbability and ReverseProbability must be in [0, 1] (got {FlipProbability}, {ReverseProbability}).");
    }

    (float X, float Y, float W, float H) CenterBox(int ih, int iw)
    {
        // the largest box with the output's aspect ratio, shrunk by CenterCropFraction, centred
        float target = Width / (float)Height;
        float w = iw, h = iw / target;
        if (h > ih) { h = ih; w = ih * target; }
        w *= CenterCropFraction; h *= CenterCropFraction;
        return ((iw - w) / 2f, (ih - h) / 2f, w, h);
    }

    (float X, float Y, float W, float H) RandomBox(int ih, int iw, SampleRng rng)
    {
        float area = ih * iw;
        for (int attempt = 0; attempt < 10; attempt++)
        {
            float a = area * rng.Uniform(MinScale, MaxScale);
            float r = MathF.Exp(rng.Uniform(MathF.Log(MinRatio), MathF.Log(MaxRatio)));
            float w = MathF.Sqrt(a * r), h = MathF.Sqrt(a / r);
            if (w <= iw && h <= ih) return (rng.Uniform(0f, iw - w), rng.Uniform(0f, ih - h), w, h);
        }
        return CenterBox(ih, iw); // torchvision's fallback when no sampled box fits
    }

    /// <summary>Bilinear taps sampling [start, start+len) of an axis of n pixels at n_out pixel centres.</summary>
    static void Taps(float start, float len, int nOut, int n, bool flip, int[] i0, int[] i1, float[] w)
    {
        float step = len / nOut;
        for (int o = 0; o < nOut; o++)
        {
            int oo = flip ? nOut - 1 - o : o;
            float s = Math.Clamp(start + (oo + 0.5f) * step - 0.5f, 0f, n - 1);
            int a = (int)s;
            i0[o] = a;
            i1[o] = Math.Min(a + 1, n - 1);
            w[o] = s - a;
        }
    }
}
