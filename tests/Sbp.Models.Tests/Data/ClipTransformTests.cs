using Sbp.Models.Data;

namespace Sbp.Models.Tests.Data;

public class ClipTransformTests
{
    static readonly ClipTransform Plain = new() { Height = 6, Width = 5, Mean = [0f, 0f, 0f], Std = [1f, 1f, 1f] };

    [Test]
    public void SameSizeWithoutAugmentationIsAnExactTransposeToChannelsFirst()
    {
        var clip = DataTestSupport.Ramp(3, 6, 5);
        var dst = new float[Plain.FloatsPerClip(3)];
        Plain.Apply(clip, dst, null);
        for (int c = 0; c < 3; c++)
            for (int t = 0; t < 3; t++)
                for (int y = 0; y < 6; y++)
                    for (int x = 0; x < 5; x++)
                        Assert.That(dst[((c * 3 + t) * 6 + y) * 5 + x], Is.EqualTo(DataTestSupport.RampValue(t, y, x, c) / 255f).Within(1e-6f),
                            $"[c {c}, t {t}, y {y}, x {x}]");
    }

    [Test]
    public void NormalizesPerChannel()
    {
        var clip = new VideoClip(1, 2, 2);
        Array.Fill(clip.Data, (byte)255);
        var tf = new ClipTransform { Height = 2, Width = 2, Mean = [0.5f, 0.25f, 0f], Std = [0.5f, 0.25f, 2f] };
        var dst = new float[tf.FloatsPerClip(1)];
        tf.Apply(clip, dst, null);
        Assert.That(new[] { dst[0], dst[4], dst[8] }, Is.EqualTo(new[] { 1f, 3f, 0.5f }).Within(1e-5f));
    }

    [Test]
    public void FlipMirrorsEveryFrameAlike()
    {
        var clip = DataTestSupport.Ramp(2, 6, 5);
        var flip = Plain with { FlipProbability = 1f };
        var dst = new float[flip.FloatsPerClip(2)];
        flip.Apply(clip, dst, new SampleRng(1));
        for (int t = 0; t < 2; t++)
            for (int y = 0; y < 6; y++)
                for (int x = 0; x < 5; x++)
                    Assert.That(dst[((0 * 2 + t) * 6 + y) * 5 + x], Is.EqualTo(DataTestSupport.RampValue(t, y, 4 - x, 0) / 255f).Within(1e-6f));
    }

    [Test]
    public void ReversalPlaysTheFramesBackwardsAndOnlyInTraining()
    {
        var clip = DataTestSupport.Ramp(3, 6, 5);
        var reverse = Plain with { ReverseProbability = 1f };
        var dst = new float[reverse.FloatsPerClip(3)];
        var forward = new float[dst.Length];
        Assert.Multiple(() =>
        {
            Assert.That(reverse.Apply(clip, dst, new SampleRng(1)), Is.EqualTo(ClipChanges.Reversed));
            Assert.That(reverse.Apply(clip, forward, null), Is.EqualTo(ClipChanges.None), "evaluation never reverses");
            Assert.That((Plain with { ReverseProbability = 1f, FlipProbability = 1f }).Apply(clip, new float[dst.Length], new SampleRng(1)),
                Is.EqualTo(ClipChanges.Flipped | ClipChanges.Reversed));
        });
        for (int c = 0; c < 3; c++)
            for (int t = 0; t < 3; t++)
                for (int i = 0; i < 30; i++)
                    Assert.That(dst[(c * 3 + t) * 30 + i], Is.EqualTo(forward[(c * 3 + 2 - t) * 30 + i]), $"[c {c}, t {t}, pixel {i}]");
    }

    [Test]
    public void AugmentationProbabilitiesOutsideZeroToOneAreRejected()
    {
        var e = Assert.Throws<ArgumentException>(() => (Plain with { ReverseProbability = 1.5f }).Apply(DataTestSupport.Ramp(2, 6, 5), new float[Plain.FloatsPerClip(2)], null));
        Assert.That(e!.Message, Does.Contain("ReverseProbability").And.Contain("1.5"));
    }

    [Test]
    public void RandomResizedCropIsReproducibleVariesAndStaysInTheValueRange()
    {
        var clip = DataTestSupport.Ramp(2, 24, 20);
        var tf = ClipTransform.KineticsTrain(8) with { Mean = [0f, 0f, 0f], Std = [1f, 1f, 1f] };
        var a = new float[tf.FloatsPerClip(2)];
        var b = new float[a.Length];
        var c = new float[a.Length];
        tf.Apply(clip, a, SampleRng.For(1, "crop", 0));
        tf.Apply(clip, b, SampleRng.For(1, "crop", 0));
        tf.Apply(clip, c, SampleRng.For(1, "crop", 1));
        Assert.Multiple(() =>
        {
            Assert.That(b, Is.EqualTo(a));
            Assert.That(c, Is.Not.EqualTo(a));
            Assert.That(a, Is.All.InRange(0f, 1f));
        });
    }

    [Test]
    public void DestinationOfTheWrongSizeIsRejected()
    {
        var e = Assert.Throws<ArgumentException>(() => Plain.Apply(DataTestSupport.Ramp(2, 6, 5), new float[10], null));
        Assert.That(e!.Message, Does.Contain("[3, 2, 6, 5]"));
    }
}
