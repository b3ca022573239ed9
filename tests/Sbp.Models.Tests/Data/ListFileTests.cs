using Sbp.Models.Data;

namespace Sbp.Models.Tests.Data;

public class ListFileTests
{
    string _dir = "";

    [SetUp]
    public void SetUp()
    {
        _dir = DataTestSupport.TempDir("list");
        Directory.CreateDirectory(Path.Combine(_dir, "videos"));
        File.WriteAllText(Path.Combine(_dir, "videos", "a.mp4"), "x");
        File.WriteAllText(Path.Combine(_dir, "videos", "b.mp4"), "x");
        Directory.CreateDirectory(Path.Combine(_dir, "frames", "c"));
    }

    [TearDown]
    public void TearDown() => DataTestSupport.Delete(_dir);

    string Write(params string[] lines)
    {
        var path = Path.Combine(_dir, "list.txt");
        File.WriteAllLines(path, lines);
        return path;
    }

    [Test]
    public void ParsesTwoAndThreeFieldLinesCommentsAndBlankLines()
    {
        var path = Write("# kinetics-style list", "videos/a.mp4 2", "", "  videos/b.mp4\t0  ", "frames/c 16 1");
        var list = ListFile.Load(path, classes: 3);
        Assert.Multiple(() =>
        {
            Assert.That(list.Problems, Is.Empty);
            Assert.That(list.Entries.Select(e => (Path.GetRelativePath(_dir, e.Path), e.Label, e.Line, e.FrameCount)), Is.EqualTo(new[]
            {
                (Path.Combine("videos", "a.mp4"), 2, 2, (int?)null),
                (Path.Combine("videos", "b.mp4"), 0, 4, null),
                (Path.Combine("frames", "c"), 1, 5, 16),
            }));
            Assert.That(list.Classes, Is.EqualTo(3));
            Assert.That(ListFile.Load(path).Classes, Is.EqualTo(3), "without a class count: the largest label + 1");
        });
    }

    [Test]
    public void BadLinesAreSkippedAndReportedWithFileAndLine()
    {
        var path = Write(
            "videos/a.mp4 0",          // 1 good
            "videos/a.mp4",            // 2 one field
            "videos/a.mp4 1 2 3",      // 3 four fields
            "videos/b.mp4 7",          // 4 label out of range
            "videos/b.mp4 -1",         // 5 negative
            "videos/b.mp4 cat",        // 6 not an integer
            "videos/missing.mp4 1",    // 7 missing file
            "frames/c zero 1",         // 8 bad frame count
            "videos/b.mp4 2");         // 9 good
        var list = ListFile.Load(path, classes: 3);
        Assert.Multiple(() =>
        {
            Assert.That(list.Entries.Select(e => e.Line), Is.EqualTo(new[] { 1, 9 }));
            Assert.That(list.Problems.Select(p => p.Line), Is.EqualTo(new[] { 2, 3, 4, 5, 6, 7, 8 }));
            Assert.That(list.Problems, Is.All.Matches<DataFormatException>(p => p.Message.StartsWith($"{path}:{p.Line}: ", StringComparison.Ordinal)));
            Assert.That(list.Problems[0].Problem, Does.Contain("found 1 fields"));
            Assert.That(list.Problems[1].Problem, Does.Contain("found 4 fields"));
            Assert.That(list.Problems[2].Problem, Does.Contain("label 7 is out of range 0..2"));
            Assert.That(list.Problems[4].Problem, Does.Contain("'cat' is not an integer"));
            Assert.That(list.Problems[5].Problem, Does.Contain("file not found").And.Contain("missing.mp4"));
        });
    }

    [Test]
    public void FailPolicyThrowsOnTheFirstBadLine()
    {
        var path = Write("videos/a.mp4 0", "videos/a.mp4 9", "videos/a.mp4");
        var e = Assert.Throws<DataFormatException>(() => ListFile.Load(path, classes: 2, policy: BadLinePolicy.Fail));
        Assert.That(e!.Message, Does.StartWith($"{path}:2: label 9 is out of range 0..1"));
    }

    [Test]
    public void MissingFilesAreAcceptedWhenNotChecked()
    {
        var list = ListFile.Load(Write("nowhere/x.mp4 0"), checkFiles: false);
        Assert.That(list.Entries, Has.Count.EqualTo(1));
    }

    [Test]
    public void MissingListFileNamesItself()
    {
        var e = Assert.Throws<FileNotFoundException>(() => ListFile.Load(Path.Combine(_dir, "nope.txt")));
        Assert.That(e!.Message, Does.Contain("nope.txt"));
    }
}
