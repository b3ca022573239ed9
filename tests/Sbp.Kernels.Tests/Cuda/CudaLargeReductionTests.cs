using Sbp.CudaSim;
using Sbp.Tensors;

namespace Sbp.Kernels.Tests.Cuda;

/// <summary>
/// Reductions at the sizes a Swin-T step has (a Linear bias gradient over 200k rows, a conv bias gradient, a 50M-element
/// sum), on the simulated device against float64: the values are multiples of 1/8, so every partial sum is exact in
/// float32 and any order must give the float64 result bit for bit. They run as two-stage kernels that fill the GPU,
/// and a second run gives the same bits.
/// </summary>
public sealed class CudaLargeReductionTests : CudaTest
{
    /// <summary>Multiples of 1/8 in [-1, 1].</summary>
    static float[] Eighths(int seed, long n)
    {
        var rng = new Random(seed);
        var x = new float[n];
        for (long i = 0; i < n; i++) x[i] = rng.Next(-8, 9) / 8f;
        return x;
    }

    /// <summary>The float64 sum or max of x [dims] over the axes where <paramref name="to"/> is 1 (to: dims with reduced axes as 1).</summary>
    static double[] Reference(float[] x, int[] dims, int[] to, bool max)
    {
        var outShape = new Shape(to);
        var y = Enumerable.Repeat(max ? double.NegativeInfinity : 0.0, (int)outShape.Numel).ToArray();
        var idx = new int[dims.Length];
        for (long i = 0; i < x.Length; i++)
        {
            long o = 0;
            for (int d = 0; d < dims.Length; d++) o = o * to[d] + (to[d] == 1 ? 0 : idx[d]);
            double v = x[i];
            y[o] = max ? (double.IsNaN(y[o]) || double.IsNaN(v) ? double.NaN : Math.Max(y[o], v)) : y[o] + v;
            for (int d = dims.Length - 1; d >= 0 && ++idx[d] == dims[d]; d--) idx[d] = 0;
        }
        return y;
    }

    float[] Run(float[] x, int[] from, int[] to, bool max)
    {
        var gx = Tensor.FromArray(x, new Shape(from), Gpu);
        var gy = Tensor.Full(new Shape(to), float.NaN, Gpu);
        if (max) Gpu.Backend.ReduceMax(gx, gy);
        else Gpu.Backend.ReduceSum(gx, gy);
        return gy.ToArray();
    }

    void CheckExact(float[] x, int[] from, int[] to, bool max, params string[] kernels)
    {
        var expected = Reference(x, from, to, max);
        var got = Run(x, from, to, max);
        for (int i = 0; i < expected.Length; i++)
            Assert.That(got[i], double.IsNaN(expected[i]) ? Is.NaN : Is.EqualTo((float)expected[i]), $"{(max ? "max" : "sum")} [{string.Join(", ", from)}] -> [{string.Join(", ", to)}], output {i}");
        Assert.That(Run(x, from, to, max), Is.EqualTo(got), "a second run gives the same bits");
        if (OnRealGpu) return;
        var launches = SimulatedCuda.Launches(Gpu);
        foreach (var k in kernels) Assert.That(launches, Does.ContainKey(k), $"runs as {string.Join(" + ", kernels)}");
        Assert.That(launches, Does.Not.ContainKey("reduce_f32"), "not one thread per output");
    }

    [Test]
    public void ALinearBiasGradientOver200kRowsIsATwoStageColumnSum() =>
        CheckExact(Eighths(1, 200_000L * 96), [200_000, 96], [1, 96], max: false, "sum_cols_part_f32", "sum_cols_f32");

    [TestCase(3000, 33)]
    [TestCase(5000, 3)]
    [TestCase(256, 2500)]
    public void ColumnSumsOfOtherShapes(int rows, int cols) =>
        CheckExact(Eighths(2, (long)rows * cols), [rows, cols], [1, cols], max: false, "sum_cols_part_f32");

    [Test]
    public void AConvBiasGradientKeepsTheMiddleAxis() =>
        CheckExact(Eighths(3, 8L * 96 * 6250), [8, 96, 6250], [1, 96, 1], max: false, "reduce_part_f32");

    [TestCase(false)]
    [TestCase(true)]
    public void FewOutputsOverManyElementsSplitIntoChunks(bool max) =>
        CheckExact(Eighths(4, 3L * 70_000), [3, 70_000], [3, 1], max, max ? "reduce_part_f32" : "sum_rows_f32");

    [Test]
    public void AMaxOverLeadingAndTrailingAxesPropagatesNaN()
    {
        var x = Eighths(5, 4L * 300 * 50);
        x[7 * 50 + 3] = float.NaN;                 // output 7
        x[2 * 300 * 50 + 123 * 50 + 49] = float.NaN; // output 123
        CheckExact(x, [4, 300, 50], [1, 300, 1], max: true, "reduce_part_f32");
    }

    [Test]
    public void AFiftyMillionElementSumIsExact()
    {
        var x = Eighths(6, 50_000_000);
        double expected = x.Sum(v => (double)v);
        var got = Run(x, [50_000_000], [1], max: false);
        Assert.That(got[0], Is.EqualTo((float)expected));
    }
}
