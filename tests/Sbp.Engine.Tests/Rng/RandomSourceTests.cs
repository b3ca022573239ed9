using Sbp.Rng;

namespace Sbp.Engine.Tests.Rng;

public class RandomSourceTests
{
    // Known-answer vectors of Philox4x32-10 from the Random123 distribution (kat_vectors).
    [TestCase(0u, 0u, 0u, 0u, 0u, 0u, 0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u)]
    [TestCase(0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu)]
    [TestCase(0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u, 0xa4093822u, 0x299f31d0u, 0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u)]
    public void PhiloxMatchesReferenceVectors(uint c0, uint c1, uint c2, uint c3, uint k0, uint k1, uint r0, uint r1, uint r2, uint r3) =>
        Assert.That(Philox.Block(c0, c1, c2, c3, k0, k1), Is.EqualTo((r0, r1, r2, r3)));

    [Test]
    public void SameSeedSameNumbersAndTakeAdvancesByWholeBlocks()
    {
        var a = new RandomSource(42);
        var b = new RandomSource(42);
        var xa = new float[10];
        var xb = new float[10];
        a.Uniform(xa);
        b.Uniform(xb);
        Assert.That(xa, Is.EqualTo(xb));
        Assert.That(a.Position, Is.EqualTo(12));
        var s = a.Take(5);
        Assert.That(s.Offset, Is.EqualTo(12));
        Assert.That(a.Position, Is.EqualTo(20));
        // Resuming from (seed, position) continues the same sequence.
        var resumed = new RandomSource(42, a.Position);
        Assert.That(resumed.NextUniform(), Is.EqualTo(a.NextUniform()));
    }

    [Test]
    public void SplitsAreDeterministicAndDiffer()
    {
        var root = new RandomSource(7);
        Assert.That(root.Split("dropout").Seed, Is.EqualTo(new RandomSource(7).Split("dropout").Seed));
        Assert.That(root.Split("dropout").Seed, Is.Not.EqualTo(root.Split("drop_path").Seed));
        Assert.That(root.Split(1).Seed, Is.Not.EqualTo(root.Split(2).Seed));
        Assert.That(root.Split(1).NextUniform(), Is.Not.EqualTo(root.Split(2).NextUniform()));
    }

    [Test]
    public void UniformAndNormalHaveTheRightMoments()
    {
        var rng = new RandomSource(123);
        var u = new float[200_000];
        rng.Uniform(u, -1f, 3f);
        Assert.That(u.Min(), Is.GreaterThanOrEqualTo(-1f));
        Assert.That(u.Max(), Is.LessThan(3f));
        Assert.That(u.Average(), Is.EqualTo(1.0).Within(0.02));
        var n = new float[200_000];
        rng.Normal(n, 2f, 0.5f);
        double mean = n.Average(v => (double)v);
        double std = Math.Sqrt(n.Average(v => (v - mean) * (v - mean)));
        Assert.That(mean, Is.EqualTo(2.0).Within(0.01));
        Assert.That(std, Is.EqualTo(0.5).Within(0.01));
        Assert.That(n.All(float.IsFinite), Is.True);
    }
}
