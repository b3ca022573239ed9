namespace Sbp.Models.Data;

/// <summary>Bilinear resize of 8-bit RGB images ([H, W, 3]), with box prefiltering when shrinking by 2x or more.</summary>
static class ImageResize
{
    public static void Resize(ReadOnlySpan<byte> src, int sh, int sw, Span<byte> dst, int dh, int dw)
    {
        if (sh == dh && sw == dw) { src.CopyTo(dst); return; }
        // integer box-average first so bilinear never skips pixels (aliasing) when shrinking a lot
        int fy = Math.Max(1, sh / dh), fx = Math.Max(1, sw / dw); // box size keeps the boxed image >= the output
        byte[]? boxed = null;
        if (fy > 1 || fx > 1)
        {
            int bh = sh / fy, bw = sw / fx;
            boxed = new byte[checked(bh * bw * 3)];
            int n = fy * fx;
            for (int y = 0; y < bh; y++)
                for (int x = 0; x < bw; x++)
                    for (int c = 0; c < 3; c++)
                    {
                        int sum = 0;
                        for (int i = 0; i < fy; i++)
                            for (int j = 0; j < fx; j++) sum += src[((y * fy + i) * sw + x * fx + j) * 3 + c];
                        boxed[(y * bw + x) * 3 + c] = (byte)((sum + n / 2) / n);
                    }
            src = boxed; sh = bh; sw = bw;
        }
        float sy = sh / (float)dh, sx = sw / (float)dw;
        for (int y = 0; y < dh; y++)
        {
            float fyv = Math.Clamp((y + 0.5f) * sy - 0.5f, 0f, sh - 1);
            int y0 = (int)fyv, y1 = Math.Min(y0 + 1, sh - 1);
            float wy = fyv - y0;
            for (int x = 0; x < dw; x++)
            {
                float fxv = Math.Clamp((x + 0.5f) * sx - 0.5f, 0f, sw - 1);
                int x0 = (int)fxv, x1 = Math.Min(x0 + 1, sw - 1);
                float wx = fxv - x0;
                for (int c = 0; c < 3; c++)
                {
                    float v = (1 - wy) * ((1 - wx) * src[(y0 * sw + x0) * 3 + c] + wx * src[(y0 * sw + x1) * 3 + c])
                            + wy * ((1 - wx) * src[(y1 * sw + x0) * 3 + c] + wx * src[(y1 * sw + x1) * 3 + c]);
                    dst[(y * dw + x) * 3 + c] = (byte)Math.Clamp((int)(v + 0.5f), 0, 255);
                }
            }
        }
    }
}
