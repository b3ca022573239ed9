using Sbp.Models.Data;

namespace Sbp.Models.Tests.Data;

public class SyntheticDetectionTests
{
    static readonly SyntheticDetectionOptions Small = new() { Count = 8, Frames = 64, Height = 16, Width = 16, Classes = 4, MaxSegment = 16, MaxGap = 8, Noise = 0.03f };

    [Test]
    public void PreloadedVideosAndWindowsEqualRenderedOnes()
    {
        var cached = new SyntheticDetection(Small, DataSplit.Train, ClipSampler.Dense(16, 2));
        var uncached = new SyntheticDetection(Small with { CacheBytes = 0 }, DataSplit.Train, ClipSampler.Dense(16, 2));
        ((IVideoDataset)cached).Preload();
        Assert.That((cached.Cache.Count, cached.Cache.Bytes), Is.EqualTo((Small.Count, Small.Count * (64L * 16 * 16 * 3 + 64 * sizeof(int)))),
            "whole videos and their per-frame labels");
        Assert.Multiple(() =>
        {
            for (int i = 0; i < Small.Count; i++)
            {
                var rng = new SampleRng(7 + (ulong)i);
                var a = cached.Get(i, rng.Fork(0));
                var b = uncached.Get(i, rng.Fork(0));
                Assert.That(a.Clip.Data, Is.EqualTo(b.Clip.Data), $"window of video {i}");
                Assert.That(a.FrameLabels, Is.EqualTo(b.FrameLabels));
                Assert.That(a.Label, Is.EqualTo(b.Label));
            }
        });
        Assert.That(uncached.Cache.Count, Is.Zero);
    }

    [Test]
    public void VideosAreDeterministicAndLabelsFollowTheSegments()
    {
        var a = new SyntheticDetection(Small, DataSplit.Train);
        var b = new SyntheticDetection(Small, DataSplit.Train);
        Assert.Multiple(() =>
        {
            for (int i = 0; i < 4; i++)
            {
                var s = a.Get(i, null);
                Assert.That(b.Get(i, null).Clip.Data, Is.EqualTo(s.Clip.Data));
                var segments = a.Segments(i);
                Assert.That(segments, Is.Not.Empty);
                var expected = new int[64];
                foreach (var seg in segments)
                {
                    Assert.That(seg.End - seg.Start, Is.InRange(Small.MinSegment, Small.MaxSegment));
                    for (int t = seg.Start; t < seg.End; t++) expected[t] = 1 + seg.Action;
                }
                Assert.That(s.FrameLabels, Is.EqualTo(expected), $"video {i}");
                Assert.That(DatasetWriter.Segments(s.FrameLabels!), Is.EqualTo(segments), "segments recovered from the labels");
            }
            Assert.That(new SyntheticDetection(Small, DataSplit.Validation).Get(0, null).Clip.Data, Is.Not.EqualTo(a.Get(0, null).Clip.Data));
        });
    }

    [Test]
    public void TheShapeIsStillInTheBackgroundAndMovesInActions()
    {
        // Single frames look alike; what separates background from action is the change between frames.
        var d = new SyntheticDetection(Small with { Noise = 0f, ActionTint = false }, DataSplit.Train); // motion only: the tint also changes at segment ends
        int stillPairs = 0, movingPairs = 0;
        for (int i = 0; i < 8; i++)
        {
            var s = d.Get(i, null);
            for (int t = 1; t < 64; t++)
            {
                bool changed = !s.Clip.Frame(t).SequenceEqual(s.Clip.Frame(t - 1));
                if (s.FrameLabels![t] == 0) { Assert.That(changed, Is.False, $"video {i} frame {t} is background but moved"); stillPairs++; }
                else { Assert.That(changed, Is.True, $"video {i} frame {t} is an action but did not move"); movingPairs++; }
            }
        }
        Assert.That((stillPairs, movingPairs), Is.Not.EqualTo((0, 0)));
        Assert.That(stillPairs * movingPairs, Is.Positive, "both kinds of frames occur");
    }

    [Test]
    public void AWindowSamplerCutsClipsWithTheirLabels()
    {
        var full = new SyntheticDetection(Small, DataSplit.Train);
        var windows = new SyntheticDetection(Small, DataSplit.Train, ClipSampler.Dense(16));
        var w = windows.Get(2, null);
        var f = full.Get(2, null);
        Assert.Multiple(() =>
        {
            Assert.That(w.Clip.Frames, Is.EqualTo(16));
            Assert.That(w.Clip.Data, Is.EqualTo(f.Clip.Select(Enumerable.Range(24, 16).ToArray()).Data), "evaluation window = the centre 16 frames");
            Assert.That(w.FrameLabels, Is.EqualTo(f.FrameLabels!.Skip(24).Take(16)));
        });
    }

    [Test]
    public void InvalidOptionsNameTheKnob()
    {
        var e = Assert.Throws<DataOptionException>(() => new SyntheticDetection(Small with { Frames = 10 }, DataSplit.Train));
        Assert.That(e!.Message, Does.Contain("frames (10) must hold at least one gap and one segment"));
        Assert.That(e.Field, Is.EqualTo(DataField.VideoFrames), "a program names its own option for the setting");
    }
}
