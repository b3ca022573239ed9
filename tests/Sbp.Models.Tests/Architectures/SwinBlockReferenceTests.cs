using Sbp.Autograd;
using Sbp.Engine.Tests.Support;
using Sbp.Models.Architectures;
using Sbp.Nn;
using Sbp.Rng;
using Sbp.Tensors;

namespace Sbp.Models.Tests.Architectures;

/// <summary>
/// A Swin block's forward against a direct float64 reading of the Video Swin block: every token
/// (in rolled coordinates) attends to the tokens of its window, with the relative position bias
/// table[(dt + Wt - 1)(2Wh - 1)(2Ww - 1) + (dh + Wh - 1)(2Ww - 1) + (dw + Ww - 1)] and -100 between
/// tokens of different shift regions, then the result is rolled back; plus the MLP branch.
/// </summary>
public sealed class SwinBlockReferenceTests : ModelTestBase
{
    static double[] Vec(Tensor t) => t.ToArray().Select(v => (double)v).ToArray();

    static double[] LayerNorm(double[] x, double[] w, double[] b)
    {
        double mean = x.Average(), v = x.Select(a => (a - mean) * (a - mean)).Average();
        return x.Select((a, i) => (a - mean) / Math.Sqrt(v + 1e-5) * w[i] + b[i]).ToArray();
    }

    static double[] Linear(double[] x, double[] w, double[]? b, int outF)
    {
        int inF = x.Length;
        var y = new double[outF];
        for (int o = 0; o < outF; o++)
        {
            double s = b?[o] ?? 0;
            for (int i = 0; i < inF; i++) s += w[o * inF + i] * x[i];
            y[o] = s;
        }
        return y;
    }

    static double[] Mlp(Mlp mlp, double[] x)
    {
        var h = Linear(x, Vec(mlp.Fc1.Weight), Vec(mlp.Fc1.Bias!), mlp.Fc1.OutFeatures).Select(Ref.Gelu).ToArray();
        return Linear(h, Vec(mlp.Fc2.Weight), Vec(mlp.Fc2.Bias!), mlp.Fc2.OutFeatures);
    }

    [TestCase(true)]
    [TestCase(false)]
    public void Block_matches_a_direct_reading_of_shifted_window_attention(bool shifted)
    {
        const int T = 4, H = 4, W = 6, C = 4, heads = 2;
        var win = (T: 2, H: 2, W: 3);
        var block = Own(new SwinBlock3d(C, heads, win, shifted, 2f, true, 0f, new RandomSource(12), Device));
        using (Tape.NoGrad()) Init.Uniform(block.Attn.RelativePositionBiasTable, -1f, 1f, new RandomSource(13));
        var xData = Rand.Uniform(14, T * H * W * C);
        float[] actual;
        using (var scope = TensorScope.Begin())
        using (Tape.NoGrad())
            actual = block.Forward(Tensor.FromArray(xData, new Shape(1, T, H, W, C), Device)).ToArray();

        var (st, sh, sw) = shifted ? (1, 1, 1) : (0, 0, 0);
        int Idx(int t, int h, int w) => (t * H + h) * W + w;
        // Shift regions along one axis of the rolled volume: [0, n - w), [n - w, n - s), [n - s, n).
        static int Region(int i, int n, int w, int s) => s == 0 ? 0 : i < n - w ? 0 : i < n - s ? 1 : 2;
        var x = Enumerable.Range(0, T * H * W).Select(p => xData.Skip(p * C).Take(C).Select(v => (double)v).ToArray()).ToArray();
        var n1w = Vec(block.Norm1.Weight!); var n1b = Vec(block.Norm1.Bias!);
        var qkvW = Vec(block.Attn.Qkv.Weight); var qkvB = Vec(block.Attn.Qkv.Bias!);
        var projW = Vec(block.Attn.Proj.Weight); var projB = Vec(block.Attn.Proj.Bias!);
        var table = Vec(block.Attn.RelativePositionBiasTable);
        // Rolled volume: rolled[t, h, w] = norm1(x)[(t + st) % T, ...] (torch.roll by -shift).
        var qkv = new double[T * H * W][];
        for (int t = 0; t < T; t++) for (int h = 0; h < H; h++) for (int w = 0; w < W; w++)
            qkv[Idx(t, h, w)] = Linear(LayerNorm(x[Idx((t + st) % T, (h + sh) % H, (w + sw) % W)], n1w, n1b), qkvW, qkvB, 3 * C);
        int hd = C / heads;
        double scale = 1 / Math.Sqrt(hd);
        var attnOut = new double[T * H * W][];
        for (int t = 0; t < T; t++) for (int h = 0; h < H; h++) for (int w = 0; w < W; w++)
        {
            var o = new double[C];
            int label = Region(t, T, win.T, st) * 9 + Region(h, H, win.H, sh) * 3 + Region(w, W, win.W, sw);
            for (int head = 0; head < heads; head++)
            {
                var keys = new List<(double Score, double[] V)>();
                for (int t2 = t / win.T * win.T; t2 < t / win.T * win.T + win.T; t2++)
                for (int h2 = h / win.H * win.H; h2 < h / win.H * win.H + win.H; h2++)
                for (int w2 = w / win.W * win.W; w2 < w / win.W * win.W + win.W; w2++)
                {
                    var q = qkv[Idx(t, h, w)];
                    var k = qkv[Idx(t2, h2, w2)];
                    double s = 0;
                    for (int d = 0; d < hd; d++) s += q[head * hd + d] * k[C + head * hd + d];
                    int row = ((t - t2) + win.T - 1) * (2 * win.H - 1) * (2 * win.W - 1) + ((h - h2) + win.H - 1) * (2 * win.W - 1) + ((w - w2) + win.W - 1);
                    s = s * scale + table[row * heads + head];
                    int label2 = Region(t2, T, win.T, st) * 9 + Region(h2, H, win.H, sh) * 3 + Region(w2, W, win.W, sw);
                    if (label2 != label) s -= 100;
                    keys.Add((s, k.Skip(2 * C + head * hd).Take(hd).ToArray()));
                }
                double max = keys.Max(k => k.Score), z = keys.Sum(k => Math.Exp(k.Score - max));
                foreach (var (s, v) in keys)
                    for (int d = 0; d < hd; d++) o[head * hd + d] += Math.Exp(s - max) / z * v[d];
            }
            attnOut[Idx(t, h, w)] = Linear(o, projW, projB, C);
        }
        var n2w = Vec(block.Norm2.Weight!); var n2b = Vec(block.Norm2.Bias!);
        var expected = new float[T * H * W * C];
        for (int t = 0; t < T; t++) for (int h = 0; h < H; h++) for (int w = 0; w < W; w++)
        {
            // Roll back: the original position p came from rolled position (p - shift).
            var a = attnOut[Idx((t - st + T) % T, (h - sh + H) % H, (w - sw + W) % W)];
            var x1 = x[Idx(t, h, w)].Select((v, i) => v + a[i]).ToArray();
            var m = Mlp(block.Mlp, LayerNorm(x1, n2w, n2b));
            for (int i = 0; i < C; i++) expected[Idx(t, h, w) * C + i] = (float)(x1[i] + m[i]);
        }
        AssertClose($"swin block (shifted {shifted})", actual, expected, 1e-4, 1e-5);
    }
}
