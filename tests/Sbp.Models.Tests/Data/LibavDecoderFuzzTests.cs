using Sbp.Models.Data;

namespace Sbp.Models.Tests.Data;

/// <summary>
/// Damaged files decoded in process: FFmpeg's libraries run inside the training process, so a file that crashed
/// them would end the run. Seeded mutations (bit flips, overwritten runs, truncation) of H.264 and MPEG-4 files
/// must each give frames or a reason, through the same calls the loader makes (900 per file ran clean once too).
/// </summary>
public class LibavDecoderFuzzTests
{
    const int MutationsPerFile = 300;
    string _dir = "";

    [SetUp]
    public void SetUp()
    {
        DataTestSupport.RequireFfmpeg();
        if (Libav.Shared is null) Assert.Ignore($"clips are not decoded in process here ({Libav.UnavailableReason})");
        _dir = DataTestSupport.TempDir("libav-fuzz");
    }

    [TearDown]
    public void TearDown() => DataTestSupport.Delete(_dir);

    [TestCase("h264-bframes.mp4")]
    [TestCase("mpeg4.avi")]
    public void MutatedFilesGiveFramesOrAReasonNeverACrash(string file)
    {
        var path = RealVideoFixtures.Make(_dir, RealVideoFixtures.Codecs.Single(c => c.File == file))!;
        var original = File.ReadAllBytes(path);
        var rng = new Random(file.Length * 7919);
        int decoded = 0, refused = 0;
        for (int m = 0; m < MutationsPerFile; m++)
        {
            var bytes = (byte[])original.Clone();
            switch (m % 3)
            {
                case 0:
                    for (int i = 0; i < 1 + rng.Next(16); i++) bytes[rng.Next(bytes.Length)] ^= (byte)(1 << rng.Next(8));
                    break;
                case 1:
                    int at = rng.Next(bytes.Length), run = Math.Min(1 + rng.Next(512), bytes.Length - at);
                    rng.NextBytes(bytes.AsSpan(at, run));
                    break;
                default:
                    bytes = bytes[..rng.Next(bytes.Length)];
                    break;
            }
            string mutated = Path.Combine(_dir, $"m{m}{Path.GetExtension(file)}");
            File.WriteAllBytes(mutated, bytes);
            foreach (double? seek in new double?[] { null, 2.5 })
            {
                LibavDecoder.Result? r;
                string? failure;
                try
                {
                    r = LibavDecoder.Decode(Libav.Shared!, mutated, 15, seek, 0, 8, [0, 3, 7], 32, 48, out failure);
                }
                catch (VideoReadException e) { r = null; failure = e.Message; }
                if (r is { } d)
                {
                    decoded++;
                    Assert.That(d.Wanted, Is.InRange(0, 3));
                    Assert.That(d.Pixels, Has.Length.EqualTo(3 * 32 * 48 * 3));
                }
                else
                {
                    refused++;
                    Assert.That(failure, Is.Not.Null.And.Not.Empty, $"mutation {m}: no frames and no reason");
                }
            }
        }
        TestContext.Out.WriteLine($"{file}: {MutationsPerFile} mutations, {decoded} decodes gave frames, {refused} refused");
        Assert.That(decoded, Is.GreaterThan(0), "most damaged files still decode");
    }
}
