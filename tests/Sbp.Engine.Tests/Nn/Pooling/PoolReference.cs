using Sbp.Engine.Tests.Support;

namespace Sbp.Engine.Tests.Nn.Pooling;

/// <summary>Direct float64 pooling over [N, C, T, H, W] (2-D: T = 1), PyTorch's definitions with ceil_mode off.</summary>
static class PoolReference
{
    public static RefTensor Pool3d(RefTensor x, int[] k, int[] s, int[] p, bool max, bool countIncludePad)
    {
        int n = x.Shape[0], c = x.Shape[1];
        var inp = x.Shape[2..];
        var o = new int[3];
        for (int a = 0; a < 3; a++) o[a] = (inp[a] + 2 * p[a] - k[a]) / s[a] + 1;
        var y = RefTensor.Zeros(n, c, o[0], o[1], o[2]);
        for (int b = 0; b < n; b++)
        for (int ch = 0; ch < c; ch++)
        for (int ot = 0; ot < o[0]; ot++)
        for (int oh = 0; oh < o[1]; oh++)
        for (int ow = 0; ow < o[2]; ow++)
        {
            double best = double.NegativeInfinity, sum = 0;
            int count = 0;
            for (int kt = 0; kt < k[0]; kt++)
            for (int kh = 0; kh < k[1]; kh++)
            for (int kw = 0; kw < k[2]; kw++)
            {
                int it = ot * s[0] - p[0] + kt, ih = oh * s[1] - p[1] + kh, iw = ow * s[2] - p[2] + kw;
                if (it < 0 || it >= inp[0] || ih < 0 || ih >= inp[1] || iw < 0 || iw >= inp[2]) continue;
                double v = x[b, ch, it, ih, iw];
                best = Math.Max(best, v);
                sum += v;
                count++;
            }
            y[b, ch, ot, oh, ow] = max ? best : sum / (countIncludePad ? k[0] * k[1] * k[2] : count);
        }
        return y;
    }

    public static RefTensor Pool2d(RefTensor x, int[] k, int[] s, int[] p, bool max, bool countIncludePad)
    {
        var y = Pool3d(new RefTensor(x.Data, [x.Shape[0], x.Shape[1], 1, x.Shape[2], x.Shape[3]]), [1, .. k], [1, .. s], [0, .. p], max, countIncludePad);
        return new RefTensor(y.Data, [y.Shape[0], y.Shape[1], y.Shape[3], y.Shape[4]]);
    }
}
