using Sbp.Models.Data;
using Sbp.Tensors;

namespace Sbp.Models.Tests.Data;

/// <summary>
/// `datasets make` output read back through the real loaders: the FFmpeg path (skipped, with the
/// reason, when ffmpeg is not installed) and the PNG frame-folder path (always runs).
/// </summary>
public class FfmpegRoundTripTests
{
    string _dir = "";

    [SetUp]
    public void SetUp() => _dir = DataTestSupport.TempDir("roundtrip");

    [TearDown]
    public void TearDown() => DataTestSupport.Delete(_dir);

    static SyntheticActions Actions(DataSplit split, int count) =>
        new(new SyntheticActionsOptions { Count = count, Classes = 4, Frames = 8, Height = 32, Width = 32, Seed = 5 }, split);

    /// <summary>Writes train/val, reads train back with a loader (eval mode) and returns (indices, labels, clips, expected clips).</summary>
    (int[] Indices, int[] Labels, float[] Clips, float[] Expected, Shape Shape) RoundTrip(VideoStorage storage)
    {
        var train = Actions(DataSplit.Train, 4);
        DatasetWriter.Write(_dir, train, Actions(DataSplit.Validation, 1), new DatasetWriterOptions { Storage = storage, Crf = 10 });
        var read = DatasetCatalog.Open(new DatasetSpec { Source = _dir }, DataSplit.Train);
        Assert.That(read, Is.TypeOf<VideoListDataset>());
        Assert.That((read.Count, read.ClassNames), Is.EqualTo((4, train.ClassNames)), "count and class names from the list and classes.txt");
        Assert.That(DatasetCatalog.Open(new DatasetSpec { Source = _dir }, DataSplit.Validation).Count, Is.EqualTo(1));

        var tf = new ClipTransform { Height = 32, Width = 32, Mean = [0f, 0f, 0f], Std = [1f, 1f, 1f] };
        var loader = new VideoLoader(read, new VideoLoaderOptions { BatchSize = 4, Train = false, Transform = tf }, Device.CreateCpu("roundtrip"));
        using var batch = loader.Epoch(0).Single();
        var expected = new float[4 * tf.FloatsPerClip(8)];
        for (int i = 0; i < 4; i++) tf.Apply(train.Get(i, null).Clip, expected.AsSpan(i * tf.FloatsPerClip(8), tf.FloatsPerClip(8)), null);
        Assert.That(loader.Issues.CorruptCount, Is.Zero);
        return (batch.Indices.ToArray(), batch.Labels.ToIntArray(), batch.Clips.ToArray(), expected, batch.Clips.Shape);
    }

    [Test]
    public void H264VideosReadBackWithTheRightCountShapesLabelsAndNearlyThePixels()
    {
        DataTestSupport.RequireFfmpeg();
        var (indices, labels, clips, expected, shape) = RoundTrip(VideoStorage.H264);
        double mae = clips.Zip(expected, (a, b) => Math.Abs(a - b)).Average() * 255;
        double worstFrameMean = Enumerable.Range(0, clips.Length / (32 * 32))
            .Max(f => Enumerable.Range(f * 1024, 1024).Average(i => Math.Abs(clips[i] - expected[i]))) * 255;
        TestContext.Out.WriteLine($"H.264 crf 10 yuv444p: mean abs error {mae:F2} levels, worst channel-frame {worstFrameMean:F2}");
        Assert.Multiple(() =>
        {
            Assert.That(shape, Is.EqualTo(new Shape(4, 3, 8, 32, 32)));
            Assert.That(indices, Is.EqualTo(Enumerable.Range(0, 4)));
            Assert.That(labels, Is.EqualTo(new[] { 0, 1, 2, 3 }));
            Assert.That(mae, Is.LessThan(4.0), "mean abs error in 8-bit levels");
            Assert.That(worstFrameMean, Is.LessThan(8.0), "a frame decoded out of order or a wrong frame would be far off");
        });
    }

    [Test]
    public void Ffv1VideosReadBackExactly()
    {
        DataTestSupport.RequireFfmpeg();
        var (_, labels, clips, expected, _) = RoundTrip(VideoStorage.Ffv1);
        Assert.Multiple(() =>
        {
            Assert.That(labels, Is.EqualTo(new[] { 0, 1, 2, 3 }));
            Assert.That(clips, Is.EqualTo(expected));
        });
    }

    [Test]
    public void PngFrameFoldersReadBackExactly()
    {
        var (_, labels, clips, expected, _) = RoundTrip(VideoStorage.Png);
        Assert.Multiple(() =>
        {
            Assert.That(labels, Is.EqualTo(new[] { 0, 1, 2, 3 }));
            Assert.That(clips, Is.EqualTo(expected));
        });
    }

    [Test]
    public void ClipsOfALongVideoAreTheRightFrames()
    {
        // a dense clip from the middle of a 24-frame video: trim must start at the right frame
        DataTestSupport.RequireFfmpeg();
        var video = DataTestSupport.Ramp(24, 16, 16);
        string path = Path.Combine(_dir, "ramp.mkv");
        DatasetWriter.WriteVideo(path, video, new DatasetWriterOptions { Storage = VideoStorage.Ffv1 });
        var source = new FfmpegVideoSource(cacheBytes: 0); // every read runs ffmpeg on frames first..last
        var info = source.Probe(path);
        int[] idx = [5, 7, 7, 9, 11];
        var clip = source.Read(path, idx, 0);
        var half = source.Read(path, [3], 8);
        Assert.Multiple(() =>
        {
            Assert.That((info.Frames, info.Height, info.Width), Is.EqualTo((24, 16, 16)));
            Assert.That(info.FrameRate, Is.EqualTo(8).Within(1e-6));
            Assert.That(clip.Data, Is.EqualTo(video.Select(idx).Data));
            Assert.That((half.Height, half.Width), Is.EqualTo((8, 8)), "decoded at short side 8");
            Assert.That(source.DecodeRuns, Is.EqualTo(2));
        });

        // with the cache: one decode per (video, size), the same frames
        var cached = new FfmpegVideoSource();
        int[] other = [0, 23, 23];
        Assert.Multiple(() =>
        {
            Assert.That(cached.Read(path, idx, 0).Data, Is.EqualTo(clip.Data));
            Assert.That(cached.Read(path, other, 0).Data, Is.EqualTo(video.Select(other).Data));
            Assert.That(cached.Read(path, [3], 8).Data, Is.EqualTo(half.Data));
            Assert.That((cached.DecodeRuns, cached.Cache.Hits), Is.EqualTo((2, 1)));
        });
    }

    [Test]
    public void TheDecodedVideoCacheEvictsTheLeastRecentlyUsed()
    {
        var cache = new DecodedVideoCache(capacityBytes: 3 * 300);
        VideoClip Clip() => new(1, 10, 10); // 300 bytes
        cache.Add("a", Clip());
        cache.Add("b", Clip());
        cache.Add("c", Clip());
        Assert.That(cache.TryGet("a", out _)); // a is now the most recent
        cache.Add("d", Clip());                 // evicts b
        Assert.Multiple(() =>
        {
            Assert.That(cache.TryGet("b", out _), Is.False);
            Assert.That(cache.TryGet("a", out _) && cache.TryGet("c", out _) && cache.TryGet("d", out _));
            Assert.That(cache.Bytes, Is.EqualTo(900));
        });
        cache.Add("huge", new VideoClip(4, 10, 10));
        Assert.That(cache.TryGet("huge", out _), Is.False, "a clip larger than the cache is not kept");
    }

    [Test]
    public void DetectionSegmentsComeBackAsTheSamePerFrameLabels()
    {
        var opts = new SyntheticDetectionOptions { Count = 3, Frames = 40, Height = 16, Width = 16, MaxSegment = 12, MaxGap = 6 };
        var train = new SyntheticDetection(opts, DataSplit.Train);
        DatasetWriter.Write(_dir, train, new SyntheticDetection(opts with { Count = 2 }, DataSplit.Validation),
            new DatasetWriterOptions { Storage = VideoStorage.Png, FrameRate = 7.5 });
        var read = DatasetCatalog.Open(new DatasetSpec { Source = _dir, Frames = 40 }, DataSplit.Train);
        Assert.That(read, Is.TypeOf<SegmentDataset>());
        Assert.That(read.ClassNames, Is.EqualTo(train.ClassNames));
        for (int i = 0; i < 3; i++)
        {
            var a = train.Get(i, null);
            var b = read.Get(i, null);
            Assert.That(b.FrameLabels, Is.EqualTo(a.FrameLabels), $"video {i}");
            Assert.That(b.Clip.Data, Is.EqualTo(a.Clip.Data), $"video {i}");
        }
    }

    [Test]
    public void MissingFfmpegIsReportedWithHowToInstallIt()
    {
        string empty = DataTestSupport.TempDir("no-ffmpeg");
        try
        {
            Assert.That(FfmpegTools.FindFolder(empty, null), Is.Null);
            Assert.That(FfmpegTools.FindFolder(null, empty), Is.Null);
            Assert.That(FfmpegTools.InstallHint, Does.Contain("apt-get install -y ffmpeg").And.Contain("SBP_FFMPEG_DIR"));
        }
        finally
        {
            DataTestSupport.Delete(empty);
        }
    }
}
