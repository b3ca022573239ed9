using System.Text;
using Sbp.Models.Data;
using Sbp.Models.Tests.Data;

namespace Sbp.Models.Tests.Reliability;

/// <summary>
/// Seeded fuzzing of the list-file and segment-annotation parsers with mutated lines (fields
/// deleted, duplicated, swapped or replaced by odd values, random bytes, NUL, invalid UTF-8,
/// truncation, very long fields). With <see cref="BadLinePolicy.Skip"/> a load never throws and
/// every content line becomes an entry or a reported problem; with <see cref="BadLinePolicy.Fail"/>
/// the only exception is <see cref="DataFormatException"/>. Each load runs under a timeout.
/// </summary>
public class AnnotationParserFuzzTests
{
    static readonly TimeSpan CallTimeout = TimeSpan.FromSeconds(10);
    string _dir = "";

    [SetUp]
    public void SetUp()
    {
        _dir = DataTestSupport.TempDir("fuzz");
        Directory.CreateDirectory(Path.Combine(_dir, "videos"));
        foreach (var v in new[] { "a.mp4", "b.mp4", "c.avi" }) File.WriteAllText(Path.Combine(_dir, "videos", v), "x");
        Directory.CreateDirectory(Path.Combine(_dir, "frames", "d"));
    }

    [TearDown]
    public void TearDown() => DataTestSupport.Delete(_dir);

    static readonly string[] ListLines = ["# list", "videos/a.mp4 2", "videos/b.mp4\t0", "frames/d 16 1", "", "videos/c.avi 3"];
    static readonly string[] SegmentLines = ["# video start end label", "videos/a 0.5 2.0 1", "videos/a 3 4.25 0", "videos/b.mp4 0 1e1 Jump", "frames/d 1.0 1.5 2"];
    static readonly string[] Names = ["Run", "Jump", "Throw", "Sit"];

    static readonly string[] OddFields =
    [
        "-1", "0", "4", "2147483647", "2147483648", "-2147483649", "1e309", "-1e-320", "NaN", "Infinity", "-Infinity", "-0", "0x10",
        "1,5", "\u0661\u0662", "\0", "videos/\0a.mp4", "..", "/", "../../../../etc/passwd", "videos/", "#", "Jump", "jump", "\u00e9",
        new string('9', 400), new string('a', 5000), "1.0e", "+3", " ", "\t", "\r", "\u2028", "\ufeff",
    ];

    static string MutateLine(string line, Random rng)
    {
        var f = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries).ToList();
        if (f.Count == 0) f.Add("x");
        switch (rng.Next(8))
        {
            case 0: f.RemoveAt(rng.Next(f.Count)); break;
            case 1: { int i = rng.Next(f.Count); f.Insert(i, f[i]); break; }
            case 2: { int i = rng.Next(f.Count), j = rng.Next(f.Count); (f[i], f[j]) = (f[j], f[i]); break; }
            case 3: case 4: f[rng.Next(f.Count)] = OddFields[rng.Next(OddFields.Length)]; break;
            case 5:
            {
                var s = string.Join(' ', f);
                return s[..rng.Next(s.Length + 1)];
            }
            case 6:
            {
                var chars = string.Join(' ', f).ToCharArray();
                if (chars.Length > 0) chars[rng.Next(chars.Length)] = (char)rng.Next(0, 0x3000);
                return new string(chars);
            }
            default: f.Add(OddFields[rng.Next(OddFields.Length)]); break;
        }
        return string.Join(rng.Next(3) == 0 ? "\t" : " ", f);
    }

    /// <summary>A mutated file: 1-3 lines mutated, sometimes lines duplicated or dropped, sometimes raw bytes (invalid UTF-8).</summary>
    static byte[] MutateFile(string[] lines, Random rng)
    {
        var l = lines.ToList();
        int n = 1 + rng.Next(3);
        for (int k = 0; k < n; k++)
        {
            int i = rng.Next(l.Count);
            switch (rng.Next(6))
            {
                case 0: l.RemoveAt(i); if (l.Count == 0) l.Add(""); break;
                case 1: l.Insert(i, l[i]); break;
                default: l[i] = MutateLine(l[i], rng); break;
            }
        }
        var bytes = Encoding.UTF8.GetBytes(string.Join(rng.Next(4) == 0 ? "\r\n" : "\n", l));
        if (rng.Next(5) == 0 && bytes.Length > 0) bytes[rng.Next(bytes.Length)] = (byte)rng.Next(256);
        return bytes;
    }

    // Lines as the parsers read them: strict UTF-8 (a line that is not UTF-8 is a bad line, not dropped).
    static int ContentLines(string path) => TextLines.Read(path).Count(l => !TextLines.IsBlankOrComment(l.Shown));

    void Fuzz(string fileName, string[] lines, int mutations, int seed, Action<string, BadLinePolicy, bool, Random> load)
    {
        var rng = new Random(seed);
        var path = Path.Combine(_dir, fileName);
        int failed = 0, loaded = 0;
        for (int k = 0; k < mutations; k++)
        {
            var bytes = MutateFile(lines, rng);
            File.WriteAllBytes(path, bytes);
            var policy = rng.Next(3) == 0 ? BadLinePolicy.Fail : BadLinePolicy.Skip;
            bool checkFiles = rng.Next(2) == 0;
            var callRng = new Random(rng.Next());
            var task = Task.Run(() => load(path, policy, checkFiles, callRng));
            Assert.That(((IAsyncResult)task).AsyncWaitHandle.WaitOne(CallTimeout), Is.True, $"{fileName} mutation {k} did not finish within {CallTimeout.TotalSeconds} s");
            if (task.Exception?.InnerException is { } e)
            {
                if (e is DataFormatException && policy == BadLinePolicy.Fail) { failed++; continue; }
                Assert.Fail($"{fileName} mutation {k} ({policy}, checkFiles {checkFiles}) threw {e.GetType().Name}: {e.Message}\n{e.StackTrace}\n" +
                            $"--- file ---\n{Encoding.UTF8.GetString(bytes)}");
            }
            loaded++;
        }
        TestContext.Out.WriteLine($"{fileName}: {mutations} mutated files, {loaded} loaded, {failed} stopped at a bad line (Fail policy)");
        Assert.That(loaded, Is.GreaterThan(0));
        Assert.That(failed, Is.GreaterThan(0));
    }

    [Test]
    public void MutatedListFilesLoadOrReportTheBadLine()
    {
        Fuzz("list.txt", ListLines, 2000, 31, (path, policy, checkFiles, rng) =>
        {
            int? classes = rng.Next(2) == 0 ? 4 : null;
            var list = ListFile.Load(path, classes, checkFiles: checkFiles, policy: policy);
            Assert.That(list.Entries.Count + list.Problems.Count, Is.EqualTo(ContentLines(path)), "every content line is an entry or a problem");
            Assert.That(list.Entries, Has.All.Matches<ListEntry>(e => e.Label >= 0 && e.Label < list.Classes && (e.FrameCount is null or > 0)));
            Assert.That(list.Problems, Has.All.Matches<DataFormatException>(p => p.File == path && p.Line > 0));
        });
    }

    [Test]
    public void MutatedSegmentAnnotationsLoadOrReportTheBadLine()
    {
        Fuzz("segments.txt", SegmentLines, 2000, 32, (path, policy, checkFiles, rng) =>
        {
            var names = rng.Next(2) == 0 ? Names : null;
            var ann = SegmentAnnotations.Load(path, classNames: names, checkFiles: checkFiles, policy: policy);
            var segments = ann.Videos.SelectMany(v => v.Segments).ToList();
            Assert.That(segments.Count + ann.Problems.Count, Is.EqualTo(ContentLines(path)), "every content line is a segment or a problem");
            Assert.That(segments, Has.All.Matches<TimeSegment>(s => double.IsFinite(s.Start) && double.IsFinite(s.End) && s.Start >= 0 && s.End > s.Start && s.Label >= 0 && s.Label < ann.Classes));
            foreach (var v in ann.Videos)
            {
                var labels = SegmentAnnotations.FrameLabels(v.Segments, 64, 25.0);
                Assert.That(labels, Has.All.InRange(0, ann.Classes));
            }
        });
    }

    // Regressions found by the fuzzers.

    [Test]
    public void ANulCharacterInAPathIsABadLineNotACrash()
    {
        var list = Path.Combine(_dir, "nul.txt");
        File.WriteAllText(list, "videos/a.mp4 1\nvideos/\0b.mp4 2\n");
        var l = ListFile.Load(list, policy: BadLinePolicy.Skip);
        Assert.That(l.Entries, Has.Count.EqualTo(1));
        Assert.That(l.Problems.Single().Line, Is.EqualTo(2));
        Assert.That(l.Problems.Single().Message, Does.Contain("not a valid path"));
        var seg = Path.Combine(_dir, "nul-segments.txt");
        File.WriteAllText(seg, "videos/\0a 0 1 0\n");
        Assert.Throws<DataFormatException>(() => SegmentAnnotations.Load(seg, checkFiles: false, policy: BadLinePolicy.Fail));
    }

    [Test]
    public void TheLargestIntLabelWithoutAClassCountIsRejected()
    {
        // Classes = largest label + 1 used to overflow to int.MinValue.
        var list = Path.Combine(_dir, "big.txt");
        File.WriteAllText(list, "videos/a.mp4 1\nvideos/b.mp4 2147483647\nvideos/c.avi 2147483646\n");
        var l = ListFile.Load(list);
        Assert.That(l.Problems.Single().Message, Does.Contain("too large"));
        Assert.That(l.Classes, Is.EqualTo(int.MaxValue));
    }
}
