using Sbp.Models.Data;
using Sbp.Tensors;

namespace Sbp.Models.Tests.Data;

/// <summary>Unreadable videos are warned about (named), counted and skipped, or fail the epoch by option; they never crash a run.</summary>
public class CorruptVideoTests
{
    string _dir = "";

    [SetUp]
    public void SetUp() => _dir = DataTestSupport.TempDir("corrupt");

    [TearDown]
    public void TearDown() => DataTestSupport.Delete(_dir);

    /// <summary>Six PNG frame-folder videos (no ffmpeg needed), video 2 with an undecodable frame.</summary>
    (VideoListDataset Data, string BadFrame) FrameFolders()
    {
        var actions = DataTestSupport.SmallActions(count: 6, frames: 4);
        DatasetWriter.Write(_dir, actions, DataTestSupport.SmallActions(count: 1, frames: 4, split: DataSplit.Validation),
            new DatasetWriterOptions { Storage = VideoStorage.Png, Parallelism = 1 });
        string bad = Path.Combine(_dir, "train", "000002", "img_00003.png");
        File.WriteAllBytes(bad, [0x89, 0x50, 0x4E, 0x47, 1, 2, 3, 4, 5]);
        var list = ListFile.Load(Path.Combine(_dir, "train.txt"), classes: 8);
        return (new VideoListDataset(list, ClipSampler.Dense(4)), bad);
    }

    [Test]
    public void AnUnreadableFrameFolderIsNamedCountedAndReplaced()
    {
        var (data, bad) = FrameFolders();
        var warnings = new List<string>();
        var issues = new DataIssues(m => { lock (warnings) warnings.Add(m); });
        var loader = new VideoLoader(data, new VideoLoaderOptions { BatchSize = 3, Train = false, Transform = ClipTransform.Resize(16, 16) },
            Device.CreateCpu("corrupt-skip"), issues);
        for (int epoch = 0; epoch < 2; epoch++)
        {
            var batches = loader.Epoch(epoch).Select(b => { using (b) return (b.Indices.ToArray(), b.Labels.ToIntArray()); }).ToArray();
            Assert.That(batches.SelectMany(b => b.Item1), Is.EqualTo(new[] { 0, 1, 3, 3, 4, 5 }), "video 2 is replaced by the next readable one");
            Assert.That(batches.SelectMany(b => b.Item2), Is.EqualTo(new[] { 0, 1, 3, 3, 4, 5 }), "labels follow the replacement");
        }
        Assert.Multiple(() =>
        {
            Assert.That(issues.CorruptCount, Is.EqualTo(1));
            Assert.That(warnings, Has.Count.EqualTo(1), "warned once, not once per epoch");
            Assert.That(warnings[0], Does.StartWith("warning: skipping unreadable video").And.Contain(bad));
        });
    }

    [Test]
    public void TheFailPolicyStopsTheEpochWithTheFileName()
    {
        var (data, bad) = FrameFolders();
        var loader = new VideoLoader(data, new VideoLoaderOptions { BatchSize = 3, Train = false, Transform = ClipTransform.Resize(16, 16), OnCorrupt = CorruptVideoPolicy.Fail },
            Device.CreateCpu("corrupt-fail"));
        var e = Assert.Throws<BackgroundWorkException>(() => { foreach (var b in loader.Epoch(0)) b.Dispose(); });
        Assert.That(e!.InnerException, Is.TypeOf<VideoReadException>().With.Message.Contain(bad));
    }

    [Test]
    public void AnUndecodableVideoFileIsSkippedWithAWarning()
    {
        DataTestSupport.RequireFfmpeg();
        var actions = DataTestSupport.SmallActions(count: 4, frames: 4);
        DatasetWriter.Write(_dir, actions, DataTestSupport.SmallActions(count: 1, frames: 4, split: DataSplit.Validation),
            new DatasetWriterOptions { Storage = VideoStorage.Ffv1, Parallelism = 2 });
        string bad = Path.Combine(_dir, "train", "000001.mkv");
        File.WriteAllBytes(bad, new byte[4096]); // zeros: no container ffprobe recognises
        var data = DatasetCatalog.Open(new DatasetSpec { Source = _dir }, DataSplit.Train);
        var warnings = new List<string>();
        var loader = new VideoLoader(data, new VideoLoaderOptions { BatchSize = 2, Train = false, Transform = ClipTransform.Resize(16, 16) },
            Device.CreateCpu("corrupt-ffmpeg"), new DataIssues(m => { lock (warnings) warnings.Add(m); }));
        var indices = loader.Epoch(0).SelectMany(b => { using (b) return b.Indices.ToArray(); }).ToArray();
        Assert.Multiple(() =>
        {
            Assert.That(indices, Is.EqualTo(new[] { 0, 2, 2, 3 }));
            Assert.That(loader.Issues.CorruptCount, Is.EqualTo(1));
            Assert.That(warnings.Single(), Does.Contain(bad));
        });
    }
}
