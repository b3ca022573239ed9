using Sbp.CudaSim;
using Sbp.Tensors;

namespace Sbp.Kernels.Tests.Cuda;

/// <summary>
/// Kernels on the CUDA device against float64 references computed here (not the CPU backend). Every element must lie
/// within a worst-case bound built from float32 rounding (u = 2^-24 per operation; a sum whose terms each pass
/// through at most k roundings is within k u sum|terms|, Higham 4.2) and the documented errors of the approximate instructions the kernel uses:
/// ex2.approx relative 2^-22 (PTX ISA, ex2), lg2.approx absolute 2^-22 on [0.5, 2], else 2 ulp (CUDA C++ Programming
/// Guide, __log2f). Derivations are first order; a factor 1.01 covers the second-order terms. The bounds hold on a GPU
/// as on the seeded simulator, whose .approx results sit anywhere in (and often at the edge of) those errors.
/// </summary>
public sealed class CudaFloat64ReferenceTests : CudaTest
{
    const double U = 1.0 / (1 << 24), Slack = 1.01;
    static readonly double Ex2Rel = Math.ScaleB(1.0, -22);

    /// <summary>
    /// Roundings a term of a block reduction goes through: a thread's strided sum of at most ceil(n / 32) terms
    /// (blockDim.x is a multiple of 32), five butterfly levels within the warp, five across at most 32 warps.
    /// </summary>
    static int Depth(int n) => (n + 31) / 32 + 10;

    static double Ulp(double v) => Math.ScaleB(1.0, Math.Max(Math.ILogB(v), -126) - 23);

    static void Within(float[] got, double[] reference, double[] bound, string what)
    {
        var bad = new List<string>();
        double worst = 0;
        for (int i = 0; i < got.Length; i++)
        {
            double diff = Math.Abs(got[i] - reference[i]);
            worst = Math.Max(worst, diff / (bound[i] * Slack));
            if (!(diff <= bound[i] * Slack) && bad.Count < 8)
                bad.Add($"[{i}] got {got[i]:R}, float64 {reference[i]:R}, |diff| {diff:G3} > bound {bound[i] * Slack:G3}");
        }
        TestContext.Out.WriteLine($"{what}: largest |diff| / bound = {worst:F3}");
        Assert.That(bad, Is.Empty, $"{what}: {string.Join("; ", bad)}");
    }

    static Tensor On(Device d, float[] data, params int[] shape) => Tensor.FromArray(data, new Shape(shape), d);

    /// <summary>
    /// exp(x - max) is ex2.approx((x - max) log2 e): the subtraction, the rounded constant and the product give the
    /// argument a relative error of 3u, an absolute 3u |x - max| in the exponent; ex2 adds its relative 2^-22.
    /// </summary>
    static double ExpRel(double d) => Ex2Rel + 3 * U * Math.Abs(d);

    [Test]
    public void SoftmaxIsWithinItsFloat32AndEx2Bound()
    {
        int rows = 6, cols = 100;
        var xv = Rand.Uniform(31, rows * cols, -4f, 4f);
        var y = Tensor.Empty(new Shape(rows, cols), Gpu);
        Gpu.Backend.Softmax(On(Gpu, xv, rows, cols), y, 1, log: false);
        var (reference, bound) = (new double[rows * cols], new double[rows * cols]);
        for (int r = 0; r < rows; r++)
        {
            var x = xv.AsSpan(r * cols, cols);
            double max = x.ToArray().Max(), sum = 0, worst = 0;
            foreach (float v in x) { sum += Math.Exp(v - max); worst = Math.Max(worst, ExpRel(v - max)); }
            // The sum of positive terms: their worst relative error plus the reduction's; then rcp.rn and a product.
            double sumRel = worst + Depth(cols) * U;
            for (int c = 0; c < cols; c++)
            {
                double d = x[c] - max, p = Math.Exp(d) / sum;
                reference[r * cols + c] = p;
                bound[r * cols + c] = p * (ExpRel(d) + sumRel + 2 * U);
            }
        }
        Within(y.ToArray(), reference, bound, "softmax_f32");
    }

    [Test]
    public void LayerNormForwardIsWithinItsFloat32Bound()
    {
        int rows = 4, cols = 256;
        const float eps = 1e-5f;
        var xv = Rand.Uniform(32, rows * cols, -1.5f, 2.5f);
        var (wv, bv) = (Rand.Uniform(33, cols), Rand.Uniform(34, cols));
        var (y, mean, rstd) = (Tensor.Empty(new Shape(rows, cols), Gpu), Tensor.Empty(new Shape(rows), Gpu), Tensor.Empty(new Shape(rows), Gpu));
        Gpu.Backend.LayerNormForward(On(Gpu, xv, rows, cols), On(Gpu, wv, cols), On(Gpu, bv, cols), eps, y, mean, rstd);
        var (refY, boundY) = (new double[rows * cols], new double[rows * cols]);
        var (refM, boundM, refR, boundR) = (new double[rows], new double[rows], new double[rows], new double[rows]);
        for (int r = 0; r < rows; r++)
        {
            var x = xv.AsSpan(r * cols, cols).ToArray().Select(v => (double)v).ToArray();
            double m = x.Average(), var = x.Sum(v => (v - m) * (v - m)) / cols, rs = 1 / Math.Sqrt(var + eps);
            // mean: a block reduction, then div.rn.
            double dm = Depth(cols) * U * x.Sum(Math.Abs) / cols + U * Math.Abs(m);
            // var: sum of fma(d, d, acc) over d = x - mean (each d off by dm + u |d|), then div.rn; rstd = rcp(sqrt(var + eps)).
            double dv = x.Sum(v => 2 * Math.Abs(v - m) * (dm + U * Math.Abs(v - m))) / cols + (Depth(cols) + 2) * U * var;
            double relR = 0.5 * (dv + U * (var + eps)) / (var + eps) + 2 * U;
            (refM[r], boundM[r], refR[r], boundR[r]) = (m, dm, rs, rs * relR);
            for (int c = 0; c < cols; c++)
            {
                double d = x[c] - m, v = d * rs * wv[c] + bv[c];
                refY[r * cols + c] = v;
                // (x - mean) rstd, times w, plus b: the subtraction's and mean's error, rstd's, and three roundings.
                boundY[r * cols + c] = Math.Abs(wv[c]) * rs * (dm + Math.Abs(d) * relR + 3 * U * Math.Abs(d)) + U * Math.Abs(v);
            }
        }
        Within(mean.ToArray(), refM, boundM, "layer_norm_f32 mean");
        Within(rstd.ToArray(), refR, boundR, "layer_norm_f32 rstd");
        Within(y.ToArray(), refY, boundY, "layer_norm_f32 y");
    }

    [Test]
    public void GeluIsWithinItsFitFloat32AndEx2Bound()
    {
        const int n = 512;
        var xv = Rand.Uniform(35, n, -5f, 5f);
        var y = Tensor.Empty(new Shape(n), Gpu);
        Gpu.Backend.Unary(Sbp.Backends.UnaryOp.Gelu, On(Gpu, xv, n), y);
        var (reference, bound) = (new double[n], new double[n]);
        for (int i = 0; i < n; i++)
        {
            double x = xv[i], z = Math.Abs(x) / Math.Sqrt(2), c = 1 - Ref.Erf(z);
            // c = erfc(z) = t exp(t P(t) - 1.26551223 - z^2): the Numerical Recipes fit (relative 1.2e-7), ex2.approx,
            // and the exponent's float32 error: z (2u) squared (5u z^2), nine fmas with rounded coefficients (about
            // 20u), the subtraction and the log2 e product, at most 10u (z^2 + 3); then rcp.rn and the product by t.
            double relC = 1.2e-7 + Ex2Rel + 10 * U * (z * z + 3) + 3 * U;
            double phi = x >= 0 ? 1 - c / 2 : c / 2, v = x * phi;
            reference[i] = v;
            // x >= 0: x (1 - c/2) with an error of c/2 relC, one rounding of the difference, one of the product;
            // x < 0: x c / 2, relative relC plus the product.
            bound[i] = x >= 0 ? Math.Abs(x) * (c / 2 * relC + U) + U * Math.Abs(v) : Math.Abs(v) * (relC + U);
        }
        Within(y.ToArray(), reference, bound, "gelu_erf_f32");
    }

    [Test]
    public void CrossEntropyIsWithinItsEx2AndLg2Bound()
    {
        int rows = 5, classes = 50;
        var zv = Rand.Uniform(36, rows * classes, -5f, 5f);
        var tv = Rand.Ints(37, rows, 0, classes);
        var (loss, lse) = (Tensor.Empty(new Shape(rows), Gpu), Tensor.Empty(new Shape(rows), Gpu));
        Gpu.Backend.CrossEntropyForward(On(Gpu, zv, rows, classes), Tensor.FromArray(tv, new Shape(rows), Gpu), null, 0f, loss, lse);
        var (refL, boundL, refS, boundS) = (new double[rows], new double[rows], new double[rows], new double[rows]);
        for (int r = 0; r < rows; r++)
        {
            var z = zv.AsSpan(r * classes, classes).ToArray();
            double max = z.Max(), sum = 0, worst = 0;
            foreach (float v in z) { sum += Math.Exp(v - max); worst = Math.Max(worst, ExpRel(v - max)); }
            double relSum = worst + Depth(classes) * U, log2Sum = Math.Log2(sum);
            // lg2.approx of the sum (sum >= 1): absolute 2^-22 on [0.5, 2], else 2 ulp; the sum's relative error is an
            // absolute one in ln; ln 2 rounded to f32 and the fma with max: u |ln sum| + u |lse|.
            double lg2Abs = sum <= 2 ? Math.ScaleB(1.0, -22) : 2 * Ulp(log2Sum);
            double l = max + Math.Log(sum), lossV = l - z[tv[r]];
            double dl = relSum + Math.Log(2) * lg2Abs + U * Math.Log(sum) + U * Math.Abs(l);
            (refS[r], boundS[r]) = (l, dl);
            (refL[r], boundL[r]) = (lossV, dl + U * Math.Abs(lossV));
        }
        Within(lse.ToArray(), refS, boundS, "cross_entropy_f32 lse");
        Within(loss.ToArray(), refL, boundL, "cross_entropy_f32 loss");
    }

    /// <summary>IndexAdd with every index 0: each column of src summed by atomics (scatter_add_atomic_f32) into dst.</summary>
    static float[] AtomicColumnSums(Device d, float[] src, int count, int width)
    {
        var dst = Tensor.Zeros(new Shape(1, width), d);
        d.Backend.IndexAdd(dst, 0, Tensor.FromArray(new int[count], new Shape(count), d), On(d, src, count, width));
        return dst.ToArray();
    }

    [Test]
    public void AtomicSumIsWithinTheSummationBound()
    {
        const int count = 600, width = 16;
        var src = Rand.Uniform(38, count * width, -1f, 1f).Select((v, i) => v * (float)Math.Pow(10, i % 5 - 2)).ToArray();
        var got = AtomicColumnSums(Gpu, src, count, width);
        var (reference, bound) = (new double[width], new double[width]);
        for (int j = 0; j < width; j++)
        {
            var col = Enumerable.Range(0, count).Select(i => (double)src[i * width + j]).ToArray();
            // count atomic adds onto 0, in whatever order the hardware (or the seeded simulator) takes them.
            (reference[j], bound[j]) = (col.Sum(), (count - 1) * U * col.Sum(Math.Abs));
        }
        Within(got, reference, bound, "scatter_add_atomic_f32 column sums");

        if (OnRealGpu) return;
        // On the simulator the order follows the seed: another seed gives other bits (still within the bound above),
        // the same seed the same bits.
        float[] Seeded(ulong seed)
        {
            var d = SimulatedCuda.CreateDevice($"cuda-sim seed {seed}");
            SimulatedCuda.Simulator(d).Seed = seed;
            return AtomicColumnSums(d, src, count, width);
        }
        float[] one = Seeded(1), two = Seeded(2);
        Assert.That(Seeded(1), Is.EqualTo(one));
        Assert.That(Enumerable.Range(0, width).Count(j => BitConverter.SingleToInt32Bits(one[j]) != BitConverter.SingleToInt32Bits(two[j])), Is.GreaterThan(width / 2));
        Within(two, reference, bound, "scatter_add_atomic_f32 column sums, seed 2");
    }
}
