using Sbp.Kernels.Tests.Support;

namespace Sbp.Kernels.Tests;

/// <summary>kernels/reduce.ptx against float64 sums (and CpuBackend.ReduceSum for the axis sums).</summary>
public sealed class ReduceKernelTests : KernelTest
{
    // n, block, blocks of the first pass
    [TestCase(1, 32u, 1u)]
    [TestCase(100, 64u, 3u)]
    [TestCase(1000, 128u, 4u)]
    [TestCase(5003, 256u, 7u)]
    public void SumAndMeanInTwoPassesMatchFloat64(int n, uint block, uint blocks)
    {
        var x = Rand.Uniform(1, n, -2f, 3f);
        double sum = x.Sum(v => (double)v), abs = x.Sum(v => Math.Abs((double)v));
        ulong px = Gpu.Upload(x), partials = Gpu.Poisoned((int)blocks), total = Gpu.Poisoned(1), mean = Gpu.Poisoned(1);
        Gpu.Launch("sum_f32", blocks, block, Ptr(px), Ptr(partials), U32(n), F32(1f));
        Gpu.Launch("sum_f32", 1, 64, Ptr(partials), Ptr(total), U32(blocks), F32(1f));
        Gpu.Launch("sum_f32", 1, 64, Ptr(partials), Ptr(mean), U32(blocks), F32(1f / n));
        Assert.That(Gpu.Download(total, 1)[0], Is.EqualTo(sum).Within(1e-6 * abs + 1e-6), "sum");
        Assert.That(Gpu.Download(mean, 1)[0], Is.EqualTo(sum / n).Within((1e-6 * abs + 1e-6) / n), "mean");
    }

    [Test]
    public void SumInOneBlock()
    {
        var x = Rand.Uniform(2, 777);
        ulong total = Gpu.Poisoned(1);
        Gpu.Launch("sum_f32", 1, 1024, Ptr(Gpu.Upload(x)), Ptr(total), U32(x.Length), F32(1f));
        Assert.That(Gpu.Download(total, 1)[0], Is.EqualTo(x.Sum(v => (double)v)).Within(1e-4));
    }

    // rows, cols, block, max blocks
    [TestCase(1, 1, 32u, 1u)]
    [TestCase(3, 7, 32u, 2u)]
    [TestCase(5, 300, 128u, 2u)]
    [TestCase(17, 45, 64u, 4u)]
    public void RowSumsMatchCpu(int rows, int cols, uint block, uint maxBlocks)
    {
        var x = Rand.Uniform(3, rows * cols);
        var expected = Empty(rows, 1);
        Device.Backend.ReduceSum(T(x, rows, cols), expected);
        ulong y = Gpu.Poisoned(rows), m = Gpu.Poisoned(rows);
        Gpu.Launch("sum_rows_f32", Math.Min((uint)rows, maxBlocks), block, Ptr(Gpu.Upload(x)), Ptr(y), U32(rows), U32(cols), F32(1f));
        Check.Close(expected.ToArray(), Gpu.Download(y, rows), 1e-5, 1e-5, "sum_rows_f32");
        Gpu.Launch("sum_rows_f32", Math.Min((uint)rows, maxBlocks), block, Ptr(Gpu.Upload(x)), Ptr(m), U32(rows), U32(cols), F32(1f / cols));
        Check.Close(expected.ToArray().Select(v => v / cols).ToArray(), Gpu.Download(m, rows), 1e-5, 1e-6, "sum_rows_f32 as a mean");
    }

    [TestCase(1, 1, 32u, 1u)]
    [TestCase(7, 3, 32u, 2u)]
    [TestCase(50, 130, 64u, 2u)]
    [TestCase(9, 1000, 128u, 3u)]
    public void ColumnSumsMatchCpu(int rows, int cols, uint block, uint maxBlocks)
    {
        var x = Rand.Uniform(4, rows * cols);
        var expected = Empty(1, cols);
        Device.Backend.ReduceSum(T(x, rows, cols), expected);
        ulong y = Gpu.Poisoned(cols);
        Gpu.Launch("sum_cols_f32", SimGpu.Grid(cols, block, maxBlocks), block, Ptr(Gpu.Upload(x)), Ptr(y), U32(rows), U32(cols), F32(1f));
        Check.Close(expected.ToArray(), Gpu.Download(y, cols), 1e-5, 1e-5, "sum_cols_f32");
    }
}
