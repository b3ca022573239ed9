using Sbp.Models.Data;

namespace Sbp.Models.Tests.Data;

public class ClipSamplerTests
{
    [Test]
    public void DenseEvaluationTakesTheCentreWindowWithItsStride()
    {
        // 40 frames, 8 x stride 2 spans 15 frames: room 25, centre start 12
        Assert.That(ClipSampler.Dense(8, 2).Sample(40, null), Is.EqualTo(new[] { 12, 14, 16, 18, 20, 22, 24, 26 }));
    }

    [Test]
    public void DenseTrainingWindowsAreRandomInsideTheVideoAndReproducible()
    {
        var s = ClipSampler.Dense(4, 3);
        var starts = new HashSet<int>();
        for (int i = 0; i < 200; i++)
        {
            var idx = s.Sample(20, SampleRng.For(1, "dense", i));
            Assert.That(idx, Is.EqualTo(s.Sample(20, SampleRng.For(1, "dense", i))), "same rng, different clip");
            Assert.That(idx.Zip(idx.Skip(1), (a, b) => b - a), Is.All.EqualTo(3));
            Assert.That(idx[0], Is.InRange(0, 20 - 10));
            starts.Add(idx[0]);
        }
        Assert.That(starts, Has.Count.EqualTo(11), "every start 0..10 should occur in 200 draws");
    }

    [Test]
    public void ShortVideosRepeatTheirLastFrame()
    {
        Assert.Multiple(() =>
        {
            Assert.That(ClipSampler.Dense(6).Sample(4, null), Is.EqualTo(new[] { 0, 1, 2, 3, 3, 3 }));
            Assert.That(ClipSampler.Uniform(6).Sample(3, null), Is.EqualTo(new[] { 0, 0, 1, 1, 2, 2 }));
        });
    }

    [Test]
    public void UniformTakesOneFramePerSegment()
    {
        var s = ClipSampler.Uniform(4);
        Assert.That(s.Sample(40, null), Is.EqualTo(new[] { 5, 15, 25, 35 }), "segment middles");
        for (int i = 0; i < 50; i++)
        {
            var idx = s.Sample(40, SampleRng.For(2, "uniform", i));
            for (int k = 0; k < 4; k++) Assert.That(idx[k], Is.InRange(10 * k, 10 * k + 9));
        }
    }

    [TestCase("dense:16:2", ClipSampling.Dense, 16, 2)]
    [TestCase("dense:8", ClipSampling.Dense, 8, 1)]
    [TestCase("uniform:8", ClipSampling.Uniform, 8, 1)]
    public void ParsesSpecs(string text, ClipSampling mode, int frames, int stride)
    {
        var s = ClipSampler.Parse(text);
        Assert.That((s.Mode, s.Frames, s.Stride), Is.EqualTo((mode, frames, stride)));
    }

    [TestCase("dense")]
    [TestCase("uniform:x")]
    [TestCase("random:8")]
    [TestCase("dense:0")]
    public void RejectsBadSpecsWithTheFormat(string text)
    {
        var e = Assert.Throws(Is.InstanceOf<ArgumentException>(), () => ClipSampler.Parse(text));
        Assert.That(e!.Message, Does.Contain("dense:FRAMES").Or.Contain("frames must be > 0"));
    }
}
