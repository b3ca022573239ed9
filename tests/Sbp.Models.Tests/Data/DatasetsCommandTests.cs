using Sbp.Cli;
using Sbp.Models.Data;

namespace Sbp.Models.Tests.Data;

public class DatasetsCommandTests
{
    string _dir = "";

    [SetUp]
    public void SetUp() => _dir = DataTestSupport.TempDir("cli");

    [TearDown]
    public void TearDown() => DataTestSupport.Delete(_dir);

    static (int Code, string Out, string Err) Run(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = SbpCli.Run(args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    [Test]
    public void ShowPrintsSizeClassesAndClipShape()
    {
        var (code, o, _) = Run("datasets", "show", "synthetic-actions", "--train", "20", "--classes", "4", "--frames", "8", "--size", "24");
        Assert.Multiple(() =>
        {
            Assert.That(code, Is.Zero);
            Assert.That(o, Does.Contain("samples: 20").And.Contain("classes: 4").And.Contain("move up"));
            Assert.That(o, Does.Not.Contain("rotate"));
            Assert.That(o, Does.Contain("5 samples"));
            Assert.That(o, Does.Contain("clip: 8 frames of 24x24x3"));
        });
    }

    [Test]
    public void MakeWritesFrameFoldersThatShowReadsBack()
    {
        string dir = Path.Combine(_dir, "ds");
        var made = Run("datasets", "make", "synthetic-actions", "--out", dir, "--format", "png", "--train", "6", "--val", "3", "--frames", "4", "--size", "16");
        Assert.That(made.Code, Is.Zero, made.Err);
        Assert.That(File.ReadAllLines(Path.Combine(dir, "train.txt")), Has.Length.EqualTo(6));
        var (code, o, e) = Run("datasets", "info", dir, "--split", "val", "--batches", "1", "--batch-size", "3");
        Assert.Multiple(() =>
        {
            Assert.That(code, Is.Zero, e);
            Assert.That(o, Does.Contain("samples: 3").And.Contain("move right"));
            Assert.That(o, Does.Contain("clips [3, 3, 4, 16, 16] labels [3]"));
        });
    }

    [Test]
    public void ShowReportsBadLinesOfAListFileWithFileAndLine()
    {
        string list = Path.Combine(_dir, "list.txt");
        Directory.CreateDirectory(Path.Combine(_dir, "v"));
        File.WriteAllLines(list, ["v 0", "v 1 2 3", "missing 1"]);
        var (code, o, _) = Run("datasets", "show", list, "--classes", "2");
        Assert.Multiple(() =>
        {
            Assert.That(code, Is.Zero);
            Assert.That(o, Does.Contain("bad lines skipped: 2"));
            Assert.That(o, Does.Contain($"{list}:2: ").And.Contain($"{list}:3: "));
            Assert.That(o, Does.Contain("first sample unreadable").And.Contain("frame folder holds no"));
        });
        var strict = Run("datasets", "show", list, "--classes", "2", "--strict");
        Assert.That((strict.Code, strict.Err), Is.EqualTo((2, $"sbp datasets show: {list}:2: expected 'path label' or 'path frames label', found 4 fields: 'v 1 2 3'{Environment.NewLine}")));
    }

    [Test]
    public void UserErrorsExitWithTwoAndAMessage()
    {
        Assert.Multiple(() =>
        {
            var unknown = Run("datasets", "show", "no-such-dataset");
            Assert.That(unknown.Code, Is.EqualTo(2));
            Assert.That(unknown.Err, Does.Contain("'no-such-dataset' is neither a built-in one"));
            var knob = Run("datasets", "show", "synthetic-actions", "--classes", "40");
            Assert.That((knob.Code, knob.Err), Is.EqualTo((2, $"sbp datasets show: --classes: synthetic-actions: classes must be in 2..11 (got 40).{Environment.NewLine}")));
            var make = Run("datasets", "make", "synthetic-actions");
            Assert.That(make.Code, Is.Not.Zero, "--out is required");
        });
    }

    [Test]
    public void KernelsStillRunThroughTheCommandTree()
    {
        // KernelProfiler prints to the console: only the exit codes are checked here.
        Assert.Multiple(() =>
        {
            Assert.That(SbpCli.Run(["kernels", "list"], TextWriter.Null, TextWriter.Null), Is.Zero);
            Assert.That(SbpCli.Run(["kernels", "bogus"], TextWriter.Null, TextWriter.Null), Is.EqualTo(2));
        });
    }

    [Test]
    public void ListNamesTheBuiltInDatasets()
    {
        var (code, o, _) = Run("datasets", "list");
        Assert.That(code, Is.Zero);
        Assert.That(o, Does.Contain(DatasetCatalog.Actions).And.Contain(DatasetCatalog.Detection));
    }
}
