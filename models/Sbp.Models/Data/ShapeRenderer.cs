namespace Sbp.Models.Data;

/// <summary>
/// Draws the synthetic datasets' textured shapes on a torus (an object leaving one edge enters at the
/// opposite one), so a uniformly random position stays uniform under any motion: no frame position or
/// border contact tells where in its motion an object is. Values are linear RGB in [0, 1].
/// </summary>
sealed class ShapeRenderer
{
    public enum Kind { Square, Triangle, Disk, Cross }

    /// <summary>A shape's appearance: kind, two stripe colours, stripes per radius and stripe phase.</summary>
    public readonly record struct Look(Kind Shape, float R0, float G0, float B0, float R1, float G1, float B1, float StripeFreq, float StripePhase)
    {
        /// <summary>A random look; stripe colours in [low, high] (objects are drawn brighter than backgrounds so they stand out).</summary>
        public static Look Random(SampleRng rng, float low = 0.55f, float high = 1f) => new(
            (Kind)rng.Int(4),
            rng.Uniform(low, high), rng.Uniform(low, high), rng.Uniform(low, high),
            rng.Uniform(low, high), rng.Uniform(low, high), rng.Uniform(low, high),
            rng.Uniform(0.7f, 1.6f), rng.Uniform(0f, 1f));
    }

    /// <summary>Where a shape is: centre (pixels), angle (radians, clockwise on screen) and radius (pixels).</summary>
    public readonly record struct Pose(float X, float Y, float Angle, float Radius);

    /// <summary>A static dark background: two nearby colours mixed by a sum of two random sinusoidal gratings.</summary>
    public static float[] Background(int height, int width, SampleRng rng)
    {
        var img = new float[checked(height * width * 3)];
        // darker than the objects, with a texture of moderate contrast
        float r0 = rng.Uniform(0.05f, 0.4f), g0 = rng.Uniform(0.05f, 0.4f), b0 = rng.Uniform(0.05f, 0.4f);
        float r1 = r0 + rng.Uniform(-0.15f, 0.15f), g1 = g0 + rng.Uniform(-0.15f, 0.15f), b1 = b0 + rng.Uniform(-0.15f, 0.15f);
        float a1 = rng.Uniform(0f, MathF.Tau), f1 = rng.Uniform(1f, 3f) * MathF.Tau / Math.Max(height, width), p1 = rng.Uniform(0f, MathF.Tau);
        float a2 = rng.Uniform(0f, MathF.Tau), f2 = rng.Uniform(2f, 5f) * MathF.Tau / Math.Max(height, width), p2 = rng.Uniform(0f, MathF.Tau);
        float c1 = MathF.Cos(a1) * f1, s1 = MathF.Sin(a1) * f1, c2 = MathF.Cos(a2) * f2, s2 = MathF.Sin(a2) * f2;
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
            {
                float m = 0.5f + 0.3f * MathF.Sin(c1 * x + s1 * y + p1) + 0.2f * MathF.Sin(c2 * x + s2 * y + p2);
                int o = (y * width + x) * 3;
                img[o] = r0 + (r1 - r0) * m;
                img[o + 1] = g0 + (g1 - g0) * m;
                img[o + 2] = b0 + (b1 - b0) * m;
            }
        return img;
    }

    /// <summary>Alpha-blends the shape into <paramref name="img"/> ([H, W, 3]) with a one-pixel soft edge.</summary>
    public static void Draw(Span<float> img, int height, int width, in Look look, in Pose pose)
    {
        float cos = MathF.Cos(pose.Angle), sin = MathF.Sin(pose.Angle), inv = 1f / pose.Radius;
        float reach = pose.Radius * 1.5f + 1f; // bounding half-size (square corner at sqrt 2)
        int y0 = (int)MathF.Floor(pose.Y - reach), y1 = (int)MathF.Ceiling(pose.Y + reach);
        int x0 = (int)MathF.Floor(pose.X - reach), x1 = (int)MathF.Ceiling(pose.X + reach);
        if (y1 - y0 >= height) { y0 = 0; y1 = height - 1; }
        if (x1 - x0 >= width) { x0 = 0; x1 = width - 1; }
        for (int yy = y0; yy <= y1; yy++)
        {
            int y = Wrap(yy, height);
            float dy = WrapDelta(y + 0.5f - pose.Y, height);
            for (int xx = x0; xx <= x1; xx++)
            {
                int x = Wrap(xx, width);
                float dx = WrapDelta(x + 0.5f - pose.X, width);
                // object coordinates: rotate the offset back by the angle, in units of the radius
                float u = (cos * dx + sin * dy) * inv, v = (-sin * dx + cos * dy) * inv;
                float alpha = Math.Clamp(EdgeDistance(look.Shape, u, v) * pose.Radius + 0.5f, 0f, 1f);
                if (alpha <= 0f) continue;
                float m = 0.5f + 0.5f * MathF.Sin(MathF.Tau * (u * look.StripeFreq + look.StripePhase));
                int o = (y * width + x) * 3;
                img[o] += alpha * (look.R0 + (look.R1 - look.R0) * m - img[o]);
                img[o + 1] += alpha * (look.G0 + (look.G1 - look.G0) * m - img[o + 1]);
                img[o + 2] += alpha * (look.B0 + (look.B1 - look.B0) * m - img[o + 2]);
            }
        }
    }

    /// <summary>Signed distance to the shape's edge in radius units (positive inside), exact enough for a soft edge.</summary>
    static float EdgeDistance(Kind kind, float u, float v)
    {
        switch (kind)
        {
            case Kind.Square: return 0.8f - Math.Max(Math.Abs(u), Math.Abs(v));
            case Kind.Disk: return 1f - MathF.Sqrt(u * u + v * v);
            case Kind.Cross:
                {
                    float au = Math.Abs(u), av = Math.Abs(v);
                    return Math.Max(Math.Min(1f - au, 0.35f - av), Math.Min(0.35f - au, 1f - av));
                }
            default:
                {
                    // equilateral triangle, vertex up (-v), vertices at radius 1: three half-planes at distance 0.5
                    float d0 = 0.5f - v;
                    float d1 = 0.5f - (0.8660254f * u - 0.5f * v);
                    float d2 = 0.5f - (-0.8660254f * u - 0.5f * v);
                    return Math.Min(d0, Math.Min(d1, d2));
                }
        }
    }

    static int Wrap(int i, int n) => ((i % n) + n) % n;

    static float WrapDelta(float d, int n)
    {
        d %= n;
        if (d >= n * 0.5f) d -= n;
        else if (d < -n * 0.5f) d += n;
        return d;
    }

    /// <summary>Adds per-pixel Gaussian noise, clamps to [0, 1] and quantizes to 8 bits.</summary>
    public static void Quantize(ReadOnlySpan<float> img, Span<byte> dst, float noise, SampleRng rng)
    {
        for (int i = 0; i < img.Length; i++)
        {
            float v = img[i] + (noise > 0f ? noise * rng.Normal() : 0f);
            dst[i] = (byte)Math.Clamp((int)MathF.Round(v * 255f), 0, 255);
        }
    }
}
