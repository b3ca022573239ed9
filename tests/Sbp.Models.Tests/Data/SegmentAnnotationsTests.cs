using Sbp.Models.Data;

namespace Sbp.Models.Tests.Data;

public class SegmentAnnotationsTests
{
    string _dir = "";

    [SetUp]
    public void SetUp()
    {
        _dir = DataTestSupport.TempDir("segments");
        File.WriteAllText(Path.Combine(_dir, "v1.mp4"), "x");
        File.WriteAllText(Path.Combine(_dir, "v2.avi"), "x");
    }

    [TearDown]
    public void TearDown() => DataTestSupport.Delete(_dir);

    string Write(params string[] lines)
    {
        var path = Path.Combine(_dir, "ann.txt");
        File.WriteAllLines(path, lines);
        return path;
    }

    [Test]
    public void GroupsSegmentsByVideoResolvesExtensionsAndAcceptsClassNames()
    {
        var path = Write("v1.mp4 4.0 6.5 1", "v2 0 1.25 Jump", "# comment", "v1.mp4 0.5 2 0");
        var ann = SegmentAnnotations.Load(path, classNames: ["Run", "Jump"]);
        Assert.Multiple(() =>
        {
            Assert.That(ann.Problems, Is.Empty);
            Assert.That(ann.Videos.Select(v => Path.GetFileName(v.Path)), Is.EqualTo(new[] { "v1.mp4", "v2.avi" }));
            Assert.That(ann.Videos[0].Segments, Is.EqualTo(new[] { new TimeSegment(0.5, 2, 0), new TimeSegment(4, 6.5, 1) }), "sorted by start");
            Assert.That(ann.Videos[1].Segments, Is.EqualTo(new[] { new TimeSegment(0, 1.25, 1) }));
            Assert.That(ann.Classes, Is.EqualTo(2));
        });
    }

    [Test]
    public void BadLinesAreSkippedAndReportedWithFileAndLine()
    {
        var path = Write(
            "v1.mp4 1 2 0",        // 1 good
            "v1.mp4 1 2",          // 2 three fields
            "v1.mp4 3 2 0",        // 3 end before start
            "v1.mp4 -1 2 0",       // 4 negative start
            "v1.mp4 1 x 0",        // 5 bad end
            "v1.mp4 1 2 5",        // 6 label out of range
            "v1.mp4 1 2 Swim",     // 7 unknown name
            "v9 1 2 0");           // 8 missing video
        var ann = SegmentAnnotations.Load(path, classNames: ["Run", "Jump"]);
        Assert.Multiple(() =>
        {
            Assert.That(ann.Videos.Single().Segments, Has.Count.EqualTo(1));
            Assert.That(ann.Problems.Select(p => p.Line), Is.EqualTo(new[] { 2, 3, 4, 5, 6, 7, 8 }));
            Assert.That(ann.Problems, Is.All.Matches<DataFormatException>(p => p.Message.StartsWith($"{path}:{p.Line}: ", StringComparison.Ordinal)));
            Assert.That(ann.Problems[1].Problem, Does.Contain("not after start"));
            Assert.That(ann.Problems[4].Problem, Does.Contain("label 5 is out of range 0..1"));
            Assert.That(ann.Problems[5].Problem, Does.Contain("'Swim'"));
            Assert.That(ann.Problems[6].Problem, Does.Contain("video not found"));
        });
        var e = Assert.Throws<DataFormatException>(() => SegmentAnnotations.Load(path, classes: 2, policy: BadLinePolicy.Fail));
        Assert.That(e!.Message, Does.StartWith($"{path}:2: expected 'video start end label'"));
    }

    [Test]
    public void FrameLabelsUseFrameCentreTimes()
    {
        // 4 fps: frame t covers [t/4, (t+1)/4), centre (t + 0.5)/4
        var labels = SegmentAnnotations.FrameLabels([new TimeSegment(0.5, 1.0, 2), new TimeSegment(1.6, 2.2, 0)], frames: 10, fps: 4);
        //                      centres: 0.125 0.375 0.625 0.875 1.125 1.375 1.625 1.875 2.125 2.375
        Assert.That(labels, Is.EqualTo(new[] { 0, 0, 3, 3, 0, 0, 1, 1, 1, 0 }));
    }

    [Test]
    public void SegmentsWrittenInSecondsComeBackAsTheSameFrames()
    {
        int[] frameLabels = [0, 0, 2, 2, 2, 0, 1, 1, 0, 0, 0, 3];
        const double fps = 7.5;
        var segments = DatasetWriter.Segments(frameLabels)
            .Select(s => new TimeSegment(Math.Round(s.Start / fps, 6), Math.Round(s.End / fps, 6), s.Action)).ToList();
        Assert.That(SegmentAnnotations.FrameLabels(segments, frameLabels.Length, fps), Is.EqualTo(frameLabels));
    }
}
