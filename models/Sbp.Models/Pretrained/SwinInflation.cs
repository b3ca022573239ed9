using Sbp.Models.Architectures;

namespace Sbp.Models.Pretrained;

/// <summary>
/// Video Swin's <c>inflate_weights</c> (SwinTransformer/Video-Swin-Transformer, swin_transformer.py): a 2-D ImageNet
/// Swin state dict to the 3-D official names of a <see cref="VideoSwinConfig"/>. The patch embedding
/// [C, 3, ph, pw] is repeated over the patch's T frames and divided by T (a clip of identical frames embeds as the
/// image did); each relative position bias table [L1, heads] is resized bicubically (PyTorch's
/// <c>F.interpolate(mode='bicubic', align_corners=False)</c>) from sqrt(L1) x sqrt(L1) to (2Wh-1) x (2Ww-1) when
/// the windows differ, then tiled 2Wd-1 times over time; relative_position_index and attn_mask buffers are
/// dropped (ours are computed), and so is the image classifier "head.*" (ImageNet's classes).
/// </summary>
public static class SwinInflation
{
    /// <summary>Whether <paramref name="weights"/> is a 2-D (image) Swin state dict: a 4-D patch embedding weight.</summary>
    public static bool IsImageSwin(IReadOnlyDictionary<string, HostArray> weights) =>
        (weights.GetValueOrDefault("patch_embed.proj.weight") ?? weights.GetValueOrDefault("backbone.patch_embed.proj.weight")) is { Shape.Length: 4 };

    /// <summary>The 3-D official state dict ("backbone.*") for <paramref name="config"/>; <paramref name="dropped"/> lists what was left out.</summary>
    public static Dictionary<string, HostArray> Inflate(IReadOnlyDictionary<string, HostArray> image, VideoSwinConfig config, List<string> dropped)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(dropped);
        var result = new Dictionary<string, HostArray>(StringComparer.Ordinal);
        var (wd, wh, ww) = config.Window;
        foreach (var (key, value) in image)
        {
            string name = key.StartsWith("backbone.", StringComparison.Ordinal) ? key["backbone.".Length..] : key;
            if (name.EndsWith("relative_position_index", StringComparison.Ordinal) || name.EndsWith("attn_mask", StringComparison.Ordinal) || name.StartsWith("head.", StringComparison.Ordinal))
            {
                dropped.Add(key);
                continue;
            }
            result["backbone." + name] = name switch
            {
                "patch_embed.proj.weight" => InflateTime(value, config.Patch.T, key),
                _ when name.EndsWith("relative_position_bias_table", StringComparison.Ordinal) => Tile(ResizeTable(value, 2 * wh - 1, 2 * ww - 1, key), 2 * wd - 1),
                _ => value,
            };
        }
        return result;
    }

    /// <summary>[C, in, ph, pw] to [C, in, T, ph, pw], each time slice the weight / T.</summary>
    static HostArray InflateTime(HostArray w, int t, string key)
    {
        if (w.Shape.Length != 4) throw new ArgumentException($"Swin inflation: {key} {w} is not a 2-D patch embedding [C, in, ph, pw].");
        int c = w.Shape[0] * w.Shape[1], plane = w.Shape[2] * w.Shape[3];
        var values = new float[c * t * plane];
        for (int i = 0; i < c; i++)
            for (int k = 0; k < t; k++)
                for (int j = 0; j < plane; j++)
                    values[(i * t + k) * plane + j] = w.Values[i * plane + j] / t;
        return new HostArray([w.Shape[0], w.Shape[1], t, w.Shape[2], w.Shape[3]], values);
    }

    /// <summary>A table [S*S, heads] resized to [outH * outW, heads] (unchanged when the sizes agree).</summary>
    static HostArray ResizeTable(HostArray table, int outH, int outW, string key)
    {
        int rows = table.Shape[0], heads = table.Shape.Length == 2 ? table.Shape[1] : 0, side = (int)Math.Round(Math.Sqrt(rows));
        if (heads == 0 || side * side != rows)
            throw new ArgumentException($"Swin inflation: {key} {table} is not a square 2-D bias table [(2W-1)^2, heads].");
        if (side == outH && side == outW) return table;
        var values = new float[outH * outW * heads];
        for (int h = 0; h < heads; h++)
        {
            var plane = new float[rows];
            for (int r = 0; r < rows; r++) plane[r] = table.Values[r * heads + h];
            var resized = Bicubic(plane, side, side, outH, outW);
            for (int r = 0; r < outH * outW; r++) values[r * heads + h] = resized[r];
        }
        return new HostArray([outH * outW, heads], values);
    }

    /// <summary>[rows, heads] repeated <paramref name="times"/> times along the rows (torch's repeat(times, 1)).</summary>
    static HostArray Tile(HostArray table, int times)
    {
        var values = new float[table.Values.Length * times];
        for (int i = 0; i < times; i++) table.Values.CopyTo(values, i * table.Values.Length);
        return new HostArray([table.Shape[0] * times, table.Shape[1]], values);
    }

    /// <summary>
    /// PyTorch's upsample_bicubic2d with align_corners=False on one plane: source index scale (dst + 0.5) - 0.5 (not
    /// clamped), four taps at floor - 1 .. floor + 2 clamped to the border, cubic convolution with A = -0.75.
    /// </summary>
    public static float[] Bicubic(float[] input, int inH, int inW, int outH, int outW)
    {
        ArgumentNullException.ThrowIfNull(input);
        var output = new float[outH * outW];
        float scaleH = (float)inH / outH, scaleW = (float)inW / outW;
        for (int y = 0; y < outH; y++)
        {
            float sy = scaleH * (y + 0.5f) - 0.5f;
            int iy = (int)MathF.Floor(sy);
            var wy = Weights(sy - iy);
            for (int x = 0; x < outW; x++)
            {
                float sx = scaleW * (x + 0.5f) - 0.5f;
                int ix = (int)MathF.Floor(sx);
                var wx = Weights(sx - ix);
                float sum = 0;
                for (int a = 0; a < 4; a++)
                {
                    int r = Math.Clamp(iy - 1 + a, 0, inH - 1);
                    float row = 0;
                    for (int b = 0; b < 4; b++) row += wx[b] * input[r * inW + Math.Clamp(ix - 1 + b, 0, inW - 1)];
                    sum += wy[a] * row;
                }
                output[y * outW + x] = sum;
            }
        }
        return output;
    }

    static float[] Weights(float t)
    {
        const float A = -0.75f;
        static float Near(float x) => ((A + 2) * x - (A + 3)) * x * x + 1;
        static float Far(float x) => ((A * x - 5 * A) * x + 8 * A) * x - 4 * A;
        return [Far(t + 1), Near(t), Near(1 - t), Far(2 - t)];
    }
}
