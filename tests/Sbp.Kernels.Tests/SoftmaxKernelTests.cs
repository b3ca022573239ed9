using Sbp.Kernels.Tests.Support;

namespace Sbp.Kernels.Tests;

/// <summary>kernels/softmax.ptx against CpuBackend.Softmax / SoftmaxBackward along the last axis.</summary>
public sealed class SoftmaxKernelTests : KernelTest
{
    // rows, cols, block, max blocks (fewer blocks than rows exercises the grid-stride loop over rows)
    [TestCase(1, 1, 32u, 1u)]
    [TestCase(3, 7, 32u, 2u)]
    [TestCase(5, 33, 64u, 2u)]
    [TestCase(4, 100, 96u, 3u)]
    [TestCase(2, 1025, 256u, 2u)]
    public void SoftmaxMatchesCpu(int rows, int cols, uint block, uint maxBlocks)
    {
        var x = Rand.Normal(1, rows * cols, 3f);
        var expected = Empty(rows, cols);
        Device.Backend.Softmax(T(x, rows, cols), expected, 1, log: false);
        ulong y = Gpu.Poisoned(rows * cols);
        Gpu.Launch("softmax_f32", Math.Min((uint)rows, maxBlocks), block, Ptr(Gpu.Upload(x)), Ptr(y), U32(rows), U32(cols));
        var got = Gpu.Download(y, rows * cols);
        Check.Close(expected.ToArray(), got, 1e-5, 1e-7, "softmax_f32");
        for (int r = 0; r < rows; r++)
            Assert.That(got.Skip(r * cols).Take(cols).Sum(), Is.EqualTo(1f).Within(1e-5), $"row {r} sums to 1");
    }

    [TestCase(3, 7, 32u, 2u)]
    [TestCase(4, 100, 128u, 3u)]
    [TestCase(2, 1025, 256u, 2u)]
    public void LogSoftmaxMatchesCpu(int rows, int cols, uint block, uint maxBlocks)
    {
        var x = Rand.Normal(2, rows * cols, 3f);
        var expected = Empty(rows, cols);
        Device.Backend.Softmax(T(x, rows, cols), expected, 1, log: true);
        ulong y = Gpu.Poisoned(rows * cols);
        Gpu.Launch("log_softmax_f32", Math.Min((uint)rows, maxBlocks), block, Ptr(Gpu.Upload(x)), Ptr(y), U32(rows), U32(cols));
        Check.Close(expected.ToArray(), Gpu.Download(y, rows * cols), 1e-5, 2e-6, "log_softmax_f32");
    }

    [TestCase(false, 3, 7, 32u)]
    [TestCase(false, 5, 130, 64u)]
    [TestCase(true, 3, 7, 32u)]
    [TestCase(true, 5, 130, 64u)]
    public void BackwardMatchesCpu(bool log, int rows, int cols, uint block)
    {
        var x = Rand.Normal(3, rows * cols, 2f);
        var dy = Rand.Uniform(4, rows * cols);
        var y = Empty(rows, cols);
        Device.Backend.Softmax(T(x, rows, cols), y, 1, log);
        var expected = Empty(rows, cols);
        Device.Backend.SoftmaxBackward(y, T(dy, rows, cols), expected, 1, log);

        ulong dx = Gpu.Poisoned(rows * cols);
        string entry = log ? "log_softmax_bwd_f32" : "softmax_bwd_f32";
        Gpu.Launch(entry, 2, block, Ptr(Gpu.Upload(y.ToArray())), Ptr(Gpu.Upload(dy)), Ptr(dx), U32(rows), U32(cols));
        Check.Close(expected.ToArray(), Gpu.Download(dx, rows * cols), 1e-5, 1e-6, entry);
    }

    [Test]
    public void LargeLogitsDoNotOverflow()
    {
        int rows = 2, cols = 40;
        var x = Rand.Uniform(5, rows * cols, 80f, 120f);
        var expected = Empty(rows, cols);
        Device.Backend.Softmax(T(x, rows, cols), expected, 1, log: false);
        ulong y = Gpu.Poisoned(rows * cols);
        Gpu.Launch("softmax_f32", 2, 32, Ptr(Gpu.Upload(x)), Ptr(y), U32(rows), U32(cols));
        Check.Close(expected.ToArray(), Gpu.Download(y, rows * cols), 2e-5, 1e-7, "softmax_f32 with logits near 100");
    }
}
