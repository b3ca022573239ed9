using Sbp.Autograd;
using Sbp.Engine.Tests.Support;
using Sbp.Tensors;

namespace Sbp.Engine.Tests.Nn.Norm;

/// <summary>
/// Inputs large enough for the CPU kernels' parallel paths, forward and backward against float64
/// formulas (the formulas themselves are checked by the finite-difference tests on small sizes).
/// </summary>
public sealed class NormParallelTests : DeviceTest
{
    static void Close(string what, float[] got, double[] expected, double tol = 1e-4)
    {
        int bad = Enumerable.Range(0, got.Length).Count(i => !(Math.Abs(got[i] - expected[i]) <= tol + tol * Math.Abs(expected[i])));
        Assert.That(bad, Is.Zero, $"{what}: {bad} of {got.Length} elements differ from the float64 formula");
    }

    [Test]
    public void LayerNorm_LargeRows_ForwardAndBackward()
    {
        const int rows = 41, cols = 1003;
        var xd = Rand.Normal(1, rows * cols, 1.5f);
        var wd = Rand.Uniform(2, cols);
        var bd = Rand.Uniform(3, cols);
        var gd = Rand.Uniform(4, rows * cols);
        var x = T(xd, rows, cols);
        var w = T(wd, cols);
        var b = T(bd, cols);
        x.RequiresGrad = w.RequiresGrad = b.RequiresGrad = true;
        float[] y;
        using (var tape = Tape.Begin())
        {
            var yt = Ops.LayerNorm(x, [cols], w, b);
            y = yt.ToArray();
            tape.Backward(yt, T(gd, rows, cols));
        }
        var ey = new double[rows * cols];
        var edx = new double[rows * cols];
        var edw = new double[cols];
        var edb = new double[cols];
        for (int r = 0; r < rows; r++)
        {
            var row = Enumerable.Range(0, cols).Select(j => (double)xd[r * cols + j]).ToArray();
            double mean = row.Average(), rstd = 1 / Math.Sqrt(row.Sum(v => (v - mean) * (v - mean)) / cols + 1e-5);
            var xhat = row.Select(v => (v - mean) * rstd).ToArray();
            var dn = Enumerable.Range(0, cols).Select(j => (double)gd[r * cols + j] * wd[j]).ToArray();
            double m1 = dn.Average(), m2 = dn.Select((v, j) => v * xhat[j]).Average();
            for (int j = 0; j < cols; j++)
            {
                ey[r * cols + j] = xhat[j] * wd[j] + bd[j];
                edx[r * cols + j] = (dn[j] - m1 - xhat[j] * m2) * rstd;
                edw[j] += gd[r * cols + j] * xhat[j];
                edb[j] += gd[r * cols + j];
            }
        }
        Close("layer_norm y", y, ey);
        Close("layer_norm dx", x.Grad!.ToArray(), edx);
        Close("layer_norm dweight", w.Grad!.ToArray(), edw);
        Close("layer_norm dbias", b.Grad!.ToArray(), edb);
        x.ZeroGrad();
        w.ZeroGrad();
        b.ZeroGrad();
    }

    [TestCase(BatchNormMode.Train)]
    [TestCase(BatchNormMode.Frozen)]
    public void BatchNorm_LargeVideo_ForwardAndBackward(BatchNormMode mode)
    {
        int[] shape = [3, 16, 4, 15, 13];
        int c = 16, n = Ref.Numel(shape);
        var xd = Rand.Normal(5, n, 2f).Select(v => v + 1f).ToArray();
        var wd = Rand.Uniform(6, c);
        var bd = Rand.Uniform(7, c);
        var gd = Rand.Uniform(8, n);
        var rmd = Rand.Uniform(9, c);
        var rvd = Rand.Positive(10, c);
        var x = T(xd, shape);
        var w = T(wd, c);
        var b = T(bd, c);
        x.RequiresGrad = w.RequiresGrad = b.RequiresGrad = true;
        float[] y;
        using (var tape = Tape.Begin())
        {
            var yt = Ops.BatchNorm(x, w, b, T(rmd, c), T(rvd, c), mode);
            y = yt.ToArray();
            tape.Backward(yt, T(gd, shape));
        }
        var (bm, bv, _) = NormReference.ChannelStats(RefTensor.Of(xd, shape));
        bool train = mode == BatchNormMode.Train;
        var mean = train ? bm : rmd.Select(v => (double)v).ToArray();
        var inv = (train ? bv : rvd.Select(v => (double)v).ToArray()).Select(v => 1 / Math.Sqrt(v + 1e-5)).ToArray();
        int per = n / (shape[0] * c);
        long count = n / c;
        var sdy = new double[c];
        var sdx = new double[c];
        for (int k = 0; k < n; k++)
        {
            int ch = k / per % c;
            sdy[ch] += gd[k];
            sdx[ch] += gd[k] * (xd[k] - mean[ch]) * inv[ch];
        }
        var ey = new double[n];
        var edx = new double[n];
        for (int k = 0; k < n; k++)
        {
            int ch = k / per % c;
            double xhat = (xd[k] - mean[ch]) * inv[ch];
            ey[k] = xhat * wd[ch] + bd[ch];
            edx[k] = train
                ? wd[ch] * inv[ch] * (gd[k] - sdy[ch] / count - xhat * sdx[ch] / count)
                : gd[k] * wd[ch] * inv[ch];
        }
        Close("batch_norm y", y, ey);
        Close("batch_norm dx", x.Grad!.ToArray(), edx);
        Close("batch_norm dweight", w.Grad!.ToArray(), sdx);
        Close("batch_norm dbias", b.Grad!.ToArray(), sdy);
        x.ZeroGrad();
        w.ZeroGrad();
        b.ZeroGrad();
    }
}
