using Sbp.Backends.Cpu;
using Sbp.Engine.Tests.Support;
using Sbp.Tensors;

namespace Sbp.Engine.Tests.Backends.Cpu;

/// <summary>
/// CpuBackend softmax / log-softmax and their backward passes on contiguous rows long enough for
/// the vector paths (plus a tail), against the float64 formulas.
/// </summary>
public sealed class SoftmaxRowsTests : DeviceTest
{
    [TestCase(false)]
    [TestCase(true)]
    public void ContiguousRows_ForwardAndBackward_MatchFloat64(bool log)
    {
        foreach (var (rows, n) in new[] { (3, 37), (5, 392), (2, 7) })
        {
            var xd = Rand.Normal(n, rows * n, 3f);
            var gd = Rand.Uniform(n + 1, rows * n);
            using var x = T(xd, rows, n);
            using var g = T(gd, rows, n);
            using var y = Tensor.Empty(x.Shape, Device);
            using var dx = Tensor.Empty(x.Shape, Device);
            CpuBackend.Instance.Softmax(x, y, 1, log);
            CpuBackend.Instance.SoftmaxBackward(y, g, dx, 1, log);
            var gotY = y.ToArray();
            var gotDx = dx.ToArray();
            for (int r = 0; r < rows; r++)
            {
                var row = xd.Skip(r * n).Take(n).Select(v => (double)v).ToArray();
                double max = row.Max(), sum = row.Sum(v => Math.Exp(v - max));
                var p = row.Select(v => Math.Exp(v - max) / sum).ToArray();
                var dy = gd.Skip(r * n).Take(n).Select(v => (double)v).ToArray();
                double dot = dy.Select((v, j) => v * p[j]).Sum(), total = dy.Sum();
                for (int j = 0; j < n; j++)
                {
                    double wantY = log ? Math.Log(p[j]) : p[j];
                    double wantDx = log ? dy[j] - p[j] * total : p[j] * (dy[j] - dot);
                    Assert.That(gotY[r * n + j], Is.EqualTo(wantY).Within(1e-5 + 1e-5 * Math.Abs(wantY)), $"y[{r},{j}] (n {n}, log {log})");
                    Assert.That(gotDx[r * n + j], Is.EqualTo(wantDx).Within(1e-5 + 1e-5 * Math.Abs(wantDx)), $"dx[{r},{j}] (n {n}, log {log})");
                }
            }
        }
    }
}
