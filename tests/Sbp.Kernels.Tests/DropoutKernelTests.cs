using Sbp.Kernels.Tests.Support;
using Sbp.Rng;

namespace Sbp.Kernels.Tests;

/// <summary>kernels/dropout.ptx: Philox4x32-10 masks equal to the CPU's bit for bit.</summary>
public sealed class DropoutKernelTests : KernelTest
{
    const ulong Key = 0x0123456789ABCDEFUL;

    // n, stream offset, drop probability p, block
    [TestCase(1, 0UL, 0.5f, 32u)]
    [TestCase(7, 0UL, 0.1f, 32u)]
    [TestCase(33, 5UL, 0.3f, 64u)]
    [TestCase(1000, 4UL, 0.5f, 128u)]
    [TestCase(257, 3UL, 0.9f, 32u)]
    [TestCase(130, 0x3_FFFF_FFFEUL, 0.25f, 32u)]   // block counter crosses 2^32: the high counter word matters
    [TestCase(64, 0UL, 0f, 32u)]
    public void BernoulliMaskEqualsTheCpuMaskBitForBit(int n, ulong offset, float p, uint block)
    {
        var (threshold, scale) = Scalars(p);
        var stream = new RandomStream(Key, offset);
        var expected = Empty(n);
        Device.Backend.BernoulliMask(expected, stream, 1f - p, scale);

        ulong mask = Gpu.Poisoned(n);
        Gpu.Launch("bernoulli_mask_f32", SimGpu.Grid((n + 3) / 4 + 1, block, 3), block,
            Ptr(mask), U32(n), U64(Key), U64(offset), F32(threshold), F32(scale));
        var got = Gpu.Download(mask, n);
        Check.Exact(expected.ToArray(), got, "bernoulli_mask_f32");

        // And directly against the definition: element i uses Philox.Bits(key, offset + i).
        for (int i = 0; i < n; i++)
        {
            bool keep = Philox.Uniform(Philox.Bits(Key, offset + (ulong)i)) >= threshold;
            Assert.That(got[i], Is.EqualTo(keep ? scale : 0f), $"element {i}");
        }
    }

    [Test]
    public void AnUnalignedMaskTakesTheScalarPathAndStillMatches()
    {
        int n = 61;
        var (threshold, scale) = Scalars(0.4f);
        var expected = Empty(n);
        Device.Backend.BernoulliMask(expected, new RandomStream(Key, 8), 1f - 0.4f, scale);
        ulong buffer = Gpu.Poisoned(n + 1);
        Gpu.Launch("bernoulli_mask_f32", 2, 32, Ptr(buffer + 4), U32(n), U64(Key), U64(8), F32(threshold), F32(scale));
        var got = Gpu.Download(buffer, n + 1);
        Assert.That(got[0], Is.NaN, "nothing written before the mask");
        Check.Exact(expected.ToArray(), got[1..], "bernoulli_mask_f32 (unaligned)");
        Assert.That(Gpu.Last!.InstructionsByKind.GetValueOrDefault("st.global.v4.f32"), Is.Zero, "no vector stores to an unaligned mask");
    }

    [TestCase(1000, 0UL, 0.2f)]
    [TestCase(45, 6UL, 0.5f)]
    [TestCase(3, 1UL, 0.7f)]
    public void DropoutEqualsXTimesTheCpuMask(int n, ulong offset, float p)
    {
        var x = Rand.Uniform(1, n, -4f, 4f);
        var (threshold, scale) = Scalars(p);
        var mask = Empty(n);
        Device.Backend.BernoulliMask(mask, new RandomStream(Key, offset), 1f - p, scale);
        var m = mask.ToArray();
        var expected = x.Select((v, i) => v * m[i]).ToArray();

        ulong px = Gpu.Upload(x), y = Gpu.Poisoned(n), pm = Gpu.Poisoned(n), y2 = Gpu.Poisoned(n);
        Gpu.Launch("dropout_f32", SimGpu.Grid((n + 3) / 4 + 1, 64, 3), 64,
            Ptr(px), Ptr(y), Ptr(pm), U32(n), U64(Key), U64(offset), F32(threshold), F32(scale));
        Check.Exact(expected, Gpu.Download(y, n), "dropout_f32 y");
        Check.Exact(m, Gpu.Download(pm, n), "dropout_f32 mask");

        // Without a mask buffer (null): the same y.
        Gpu.Launch("dropout_f32", 2, 32, Ptr(px), Ptr(y2), Ptr(0), U32(n), U64(Key), U64(offset), F32(threshold), F32(scale));
        Check.Exact(expected, Gpu.Download(y2, n), "dropout_f32 y without mask");
    }

    [Test]
    public void TheKeepRateIsCloseToOneMinusP()
    {
        int n = 4000;
        var (threshold, scale) = Scalars(0.3f);
        ulong mask = Gpu.Poisoned(n);
        Gpu.Launch("bernoulli_mask_f32", 4, 256, Ptr(mask), U32(n), U64(42), U64(0), F32(threshold), F32(scale));
        double kept = Gpu.Download(mask, n).Count(v => v != 0f) / (double)n;
        Assert.That(kept, Is.EqualTo(0.7).Within(0.03));
    }

    /// <summary>What the host passes: threshold = 1f - keepProbability in float32 (as the CPU), scale = 1 / (1 - p).</summary>
    static (float threshold, float scale) Scalars(float p)
    {
        float keep = 1f - p;
        return (1f - keep, 1f / (1f - p));
    }
}
