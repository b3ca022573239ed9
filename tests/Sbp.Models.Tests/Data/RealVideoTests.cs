using Sbp.Models.Data;
using Sbp.Tensors;

namespace Sbp.Models.Tests.Data;

/// <summary>
/// Video files as they come from the wild, made here with ffmpeg: several codecs and containers (B-frames,
/// audio streams, VP9), variable frame rate, a header that claims more frames than decode, truncated files;
/// clips read by seeking must be the frames an independent decode from the start gives.
/// </summary>
public class RealVideoTests
{
    string _dir = "";
    readonly List<string> _notes = [];

    [SetUp]
    public void SetUp()
    {
        DataTestSupport.RequireFfmpeg();
        _dir = DataTestSupport.TempDir("real-video");
        _notes.Clear();
    }

    [TearDown]
    public void TearDown() => DataTestSupport.Delete(_dir);

    FfmpegVideoSource Source(VideoInfoStore? store = null, long cacheBytes = 0, bool useLibraries = true) =>
        new(cacheBytes: cacheBytes, store: store ?? new VideoInfoStore(null), warn: _notes.Add, useLibraries: useLibraries);

    /// <summary>Every codec, decoded in process (where FFmpeg's libraries can be used) and by the ffmpeg program.</summary>
    static IEnumerable<TestCaseData> CodecCases() =>
        from c in RealVideoFixtures.Codecs
        from libraries in new[] { true, false }
        select new TestCaseData(c.File, libraries).SetName($"SeekedClipsAreTheFramesADecodeFromTheStartGives({c.File}, {(libraries ? "in process" : "program")})");

    [TestCaseSource(nameof(CodecCases))]
    public void SeekedClipsAreTheFramesADecodeFromTheStartGives(string file, bool useLibraries)
    {
        var codec = RealVideoFixtures.Codecs.Single(c => c.File == file);
        string? path = RealVideoFixtures.Make(_dir, codec);
        if (path is null && file is "vp9.webm" or "hevc-10bit.mp4") Assert.Ignore($"this ffmpeg cannot write {file} (no libvpx-vp9 or libx265)");
        Assert.That(path, Is.Not.Null, $"ffmpeg could not write {file}");
        var source = Source(useLibraries: useLibraries);
        if (!useLibraries) Assert.That(source.Decoder, Is.EqualTo("by the ffmpeg program (asked for)"));
        var info = source.Probe(path!);
        Assert.That((info.Frames, info.Height, info.Width), Is.EqualTo((RealVideoFixtures.PatternFrames, 64, 96)));
        // clips across keyframes (every 24 frames), one with a stride, one at the very end; at short side 32
        int[][] clips = [[0, 1, 2, 3], [21, 22, 23, 24, 25, 26], [30, 32, 34, 36], [50, 55, 59], [59, 59]];
        foreach (var idx in clips)
        {
            var clip = source.Read(path!, idx, 32);
            var reference = RealVideoFixtures.ReferenceFrames(path!, idx[0], idx[^1], 32, 48);
            var expected = new byte[clip.Data.Length];
            for (int i = 0; i < idx.Length; i++)
                reference.AsSpan((idx[i] - idx[0]) * clip.FrameBytes, clip.FrameBytes).CopyTo(expected.AsSpan(i * clip.FrameBytes));
            Assert.That((clip.Height, clip.Width), Is.EqualTo((32, 48)), "scaled by ffmpeg to short side 32");
            Assert.That(clip.Data, Is.EqualTo(expected), $"frames {string.Join(",", idx)} of {file}");
        }
        // several clips in one ffmpeg process: the same frames (codecs read from the start are left to Read)
        var many = source.ReadMany([.. clips.Select(c => (path!, (IReadOnlyList<int>)c))], 32);
        bool fromStart = FfmpegVideoSource.DecodeFromStart.Contains(info.Codec);
        for (int k = 0; k < clips.Length; k++)
            Assert.That(many[k]?.Data, fromStart ? Is.Null : Is.EqualTo(source.Read(path!, clips[k], 32).Data));
        Assert.That(_notes, Is.Empty, "an honest header is not reported");
    }

    [Test]
    public void WhereFfmpeg51LibrariesAreInstalledClipsDecodeInProcessAndThePreRollSkipsUnreferencedFrames()
    {
        if (!System.Runtime.InteropServices.NativeLibrary.TryLoad("libavformat.so.59", out _))
            Assert.Ignore("FFmpeg 5.1's shared libraries are not installed: clips are decoded by the ffmpeg program");
        Assert.That(Libav.Shared, Is.Not.Null, Libav.UnavailableReason);
        Assert.That(Source().Decoder, Is.EqualTo("in process (FFmpeg 5.1's libraries)"));

        // frames 45..48 of an H.264 file with 3 B-frames and a key frame every 24: 21 frames lie between key frame 24
        // and the clip; the ones nothing refers to are not decoded, and the clip is still the reference's frames
        var path = RealVideoFixtures.Make(_dir, RealVideoFixtures.Codecs.Single(c => c.File == "h264-bframes.mp4"))!;
        var fps = Source().Probe(path).FrameRate;
        var d = LibavDecoder.Decode(Libav.Shared!, path, fps, (45 - 0.5) / fps, 0, 4, [0, 1, 2, 3], 32, 48, out var failure);
        Assert.That(d, Is.Not.Null, failure);
        Assert.Multiple(() =>
        {
            Assert.That(d!.Value.Pixels, Is.EqualTo(RealVideoFixtures.ReferenceFrames(path, 45, 48, 32, 48)));
            Assert.That((d.Value.Wanted, d.Value.Counted), Is.EqualTo((4, 4)));
            Assert.That(d.Value.PreRoll, Is.InRange(1, 20), "key frame 24 and the frames referred to are decoded, not all 21 (13 with this x264)");
        });
    }

    [Test]
    public void AnUnknownDecoderSettingIsRefusedByValueBeforeAnyFileIsRead()
    {
        string list = Path.Combine(_dir, "list.txt");
        File.WriteAllText(list, "missing.mp4 0\n");
        var before = Environment.GetEnvironmentVariable("SBP_VIDEO_DECODER");
        try
        {
            Environment.SetEnvironmentVariable("SBP_VIDEO_DECODER", "libs");
            Assert.That(() => new FfmpegVideoSource(), Throws.ArgumentException.With.Message.Contains("SBP_VIDEO_DECODER='libs'").And.Message.Contains("'process'"));
            Assert.That(() => DatasetCatalog.Open(new DatasetSpec { Source = list }, DataSplit.Train), Throws.ArgumentException.With.Message.Contains("'libs'"));
            Environment.SetEnvironmentVariable("SBP_VIDEO_DECODER", "process");
            Assert.That(new FfmpegVideoSource().Decoder, Is.EqualTo("by the ffmpeg program (SBP_VIDEO_DECODER=process)"));
        }
        finally { Environment.SetEnvironmentVariable("SBP_VIDEO_DECODER", before); }
    }

    [Test]
    public void RotationMetadataIsIgnoredAlikeByBothDecoders()
    {
        // a phone-style file: 96x64 coded, displayed rotated by 90 degrees; clips keep the coded orientation and size
        string plain = RealVideoFixtures.Make(_dir, RealVideoFixtures.Codecs[0])!, path = Path.Combine(_dir, "rotated.mp4");
        Assert.That(RealVideoFixtures.Ffmpeg(out var e, "-i", plain, "-c", "copy", "-metadata:s:v:0", "rotate=90", path), e);
        int[] idx = [30, 31, 32];
        var inProcess = Source().Read(path, idx, 32);
        var program = Source(useLibraries: false).Read(path, idx, 32);
        Assert.Multiple(() =>
        {
            Assert.That((inProcess.Height, inProcess.Width), Is.EqualTo((32, 48)));
            Assert.That(program.Data, Is.EqualTo(inProcess.Data));
            Assert.That(inProcess.Data, Is.EqualTo(Source().Read(plain, idx, 32).Data), "the same pixels as the file without the tag");
        });
    }

    [Test]
    public void AVariableFrameRateVideoGivesClipsOfItsFrames()
    {
        // frames kept at irregular times (every 3rd and every 5th of a 30 fps source): timestamps are not a grid
        string path = Path.Combine(_dir, "vfr.mkv");
        Assert.That(RealVideoFixtures.Ffmpeg(out var e, "-f", "lavfi", "-i", "testsrc2=size=96x64:rate=30:duration=4",
            "-vf", "select='not(mod(n\\,3))+not(mod(n\\,5))'", "-vsync", "vfr", "-c:v", "libx264", "-g", "12", path), e);
        var source = Source();
        var info = source.Probe(path);
        var data = ListOf((path, 0));
        var sampler = ClipSampler.Dense(8);
        for (int i = 0; i < 6; i++)
        {
            var (clip, idx, _) = ClipReader.Read(source, path, sampler, SampleRng.For(9, "vfr", i), 32);
            Assert.That((clip.Frames, clip.Height, clip.Width), Is.EqualTo((8, 32, 48)));
            Assert.That(idx[^1], Is.LessThan(info.Frames));
        }
        Assert.That(data.Count, Is.EqualTo(1));
    }

    [Test]
    public void AHeaderThatClaimsMoreFramesIsCorrectedOnceAndClipsComeFromTheRealFrames()
    {
        string path = RealVideoFixtures.LyingHeader(_dir);
        string storeFile = Path.Combine(_dir, "store.tsv");
        var source = Source(new VideoInfoStore(storeFile));
        Assert.That(source.Probe(path).Frames, Is.EqualTo(90), "the header's count");
        int decodable = RealVideoFixtures.ReferenceFrames(path, 0, 89, 120, 160).Length / (120 * 160 * 3);
        Assert.That(decodable, Is.InRange(20, 60), "the fixture decodes only part of its frames");

        var sampler = ClipSampler.Dense(8);
        var clips = Enumerable.Range(0, 12).Select(i => ClipReader.Read(source, path, sampler, SampleRng.For(4, "lying", i), 0)).ToArray();
        var reference = RealVideoFixtures.ReferenceFrames(path, 0, decodable - 1, 120, 160);
        Assert.Multiple(() =>
        {
            Assert.That(source.Probe(path).Frames, Is.EqualTo(decodable), "corrected to what decodes");
            Assert.That(_notes, Has.Count.EqualTo(1), "said once per file");
            Assert.That(_notes[0], Does.Contain("90 frames").And.Contain($"{decodable} decode"));
            foreach (var (clip, idx, _) in clips)
            {
                Assert.That(idx.Max(), Is.LessThan(decodable));
                for (int i = 0; i < idx.Length; i++)
                    Assert.That(clip.Frame(i).ToArray(), Is.EqualTo(reference.AsSpan(idx[i] * clip.FrameBytes, clip.FrameBytes).ToArray()), $"frame {idx[i]}");
            }
        });

        // later runs: the count comes from the store, nothing is said, and samples are drawn among the real frames
        // alike in every run (the first run's early draws, made before the count was known, may differ)
        var notesBefore = _notes.Count;
        var again = Source(new VideoInfoStore(storeFile));
        var third = Source(new VideoInfoStore(storeFile));
        Assert.That(again.Probe(path).Frames, Is.EqualTo(decodable));
        for (int i = 0; i < clips.Length; i++)
        {
            var rng = SampleRng.For(4, "lying", i);
            var (clip, idx, _) = ClipReader.Read(again, path, sampler, rng, 0);
            Assert.That(idx, Is.EqualTo(sampler.Sample(decodable, rng.Fork(ClipReader.StreamOfFrames))), "drawn among the decodable frames");
            Assert.That(ClipReader.Read(third, path, sampler, rng, 0).Clip.Data, Is.EqualTo(clip.Data));
        }
        Assert.That(_notes, Has.Count.EqualTo(notesBefore));
    }

    [Test]
    public void TruncatedFilesYieldTheirDecodableFramesOrAreSkippedWhenNothingDecodes()
    {
        var avi = RealVideoFixtures.Make(_dir, RealVideoFixtures.Codecs.Single(c => c.File == "mpeg4.avi"))!;
        var mp4 = RealVideoFixtures.Make(_dir, RealVideoFixtures.Codecs.Single(c => c.File == "h264-bframes.mp4"))!;
        foreach (var f in new[] { avi, mp4 })
        {
            var bytes = File.ReadAllBytes(f);
            File.WriteAllBytes(f, bytes[..(bytes.Length / 2)]); // the mp4 loses its index (moov is at the end)
        }
        var data = ListOf((avi, 0), (mp4, 1));
        var issues = new DataIssues(_notes.Add);
        var loader = new VideoLoader(data, new VideoLoaderOptions { BatchSize = 1, Train = true, Workers = 1 }, Device.CreateCpu("truncated"), issues);
        var names = new List<string>();
        foreach (var b in loader.Epoch(0)) using (b) names.AddRange(b.Names);
        Assert.Multiple(() =>
        {
            Assert.That(names, Is.EqualTo(new[] { avi, avi }), "the half AVI gives clips; the mp4 without its index is replaced by the next sample");
            Assert.That(issues.CorruptCount, Is.EqualTo(1));
            Assert.That(issues.Corrupt[0].Path, Is.EqualTo(mp4));
        });
    }

    [Test]
    public void ABatchDecodedInOneProcessIsTheSameAsSampleBySample()
    {
        var path = RealVideoFixtures.Make(_dir, RealVideoFixtures.Codecs[0])!;
        var second = Path.Combine(_dir, "second.mp4");
        File.Copy(path, second);
        var source = Source();
        var data = new VideoListDataset(ListOf((path, 0), (second, 1), (path, 1), (second, 0)).List, ClipSampler.Dense(6, 2), shortSide: 36,
            transform: ClipTransform.Video(32, 36, 0.3f, flip: true), videos: source);
        var rngs = Enumerable.Range(0, 4).Select(i => (SampleRng?)SampleRng.For(2, "batch", i)).ToArray();
        int before = source.DecodeRuns;
        var together = data.TryGetMany([0, 1, 2, 3], rngs);
        Assert.That(source.DecodeRuns - before, Is.EqualTo(1), "one ffmpeg process for the batch");
        for (int i = 0; i < 4; i++)
            Assert.That(together[i]!.Clip.Data, Is.EqualTo(data.Get(i, rngs[i]).Clip.Data), $"sample {i}");

        // through the loader: the batch path and the one-by-one path give the same tensors
        var device = Device.CreateCpu("batch-path");
        var fast = new VideoLoader(data, new VideoLoaderOptions { BatchSize = 4, Seed = 3 }, device);
        var slow = new VideoLoader(new InterfaceDefaults(data), new VideoLoaderOptions { BatchSize = 4, Seed = 3 }, device);
        using var a = fast.Epoch(1).Single();
        using var b = slow.Epoch(1).Single();
        Assert.That(a.Clips.ToArray(), Is.EqualTo(b.Clips.ToArray()));
    }

    /// <summary>A list dataset of the given (file, label) entries, decoded at short side 36 into 32x32 inputs.</summary>
    VideoListDataset ListOf(params (string Path, int Label)[] entries)
    {
        string list = Path.Combine(_dir, $"list-{Guid.NewGuid():N}.txt");
        File.WriteAllLines(list, entries.Select(e => $"{Path.GetFileName(e.Path)} {e.Label}"));
        return new VideoListDataset(ListFile.Load(list, 2), ClipSampler.Dense(4), shortSide: 36,
            transform: ClipTransform.Video(32, 36, 0.08f, flip: true), videos: Source());
    }
}
