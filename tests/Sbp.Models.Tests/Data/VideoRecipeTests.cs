using Sbp.Models.Data;
using Sbp.Models.Training;
using Sbp.Tensors;
using StbImageSharp;
using static Sbp.Models.Tests.Cli.CliRun;

namespace Sbp.Models.Tests.Data;

/// <summary>
/// The input recipe (size, short side, crop, flip, normalisation) reaches every data source: video files are
/// decoded at a short side and cropped to --size, synthetic data keeps its frames and flips only where flipped
/// clips are relabelled (synthetic actions).
/// </summary>
public class VideoRecipeTests
{
    string _dir = "";

    [SetUp]
    public void SetUp() => _dir = DataTestSupport.TempDir("recipe");

    [TearDown]
    public void TearDown() => DataTestSupport.Delete(_dir);

    [Test]
    public void FilesGetTheStandardVideoRecipeAndSyntheticDataItsOwnFrames()
    {
        var (files, shortSide) = DatasetCatalog.Recipe(new DatasetSpec { Source = "x" }, synthetic: false, 112, 112);
        var (synthetic, none) = DatasetCatalog.Recipe(new DatasetSpec { Source = "x" }, synthetic: true, 32, 32);
        var (custom, side) = DatasetCatalog.Recipe(new DatasetSpec { Source = "x", ShortSide = 80, MinCropArea = 0.5f, Flip = false, Mean = [0.1f, 0.2f, 0.3f] }, false, 64, 64);
        Assert.Multiple(() =>
        {
            Assert.That((shortSide, files.Height, files.RandomCrop, files.MinScale, files.FlipProbability), Is.EqualTo((128, 112, true, 0.08f, 0.5f)));
            Assert.That(files.CenterCropFraction, Is.EqualTo(112f / 128f), "evaluation: the centre 112 of 128");
            Assert.That((none, synthetic.Height, synthetic.RandomCrop, synthetic.FlipProbability, synthetic.CenterCropFraction), Is.EqualTo((0, 32, false, 0f, 1f)));
            Assert.That((side, custom.MinScale, custom.FlipProbability, custom.Mean), Is.EqualTo((80, 0.5f, 0f, new[] { 0.1f, 0.2f, 0.3f })));
        });
        var flip = Assert.Throws<DataOptionException>(() => DatasetCatalog.Recipe(new DatasetSpec { Source = "x", Flip = true }, true, 32, 32))!;
        var small = Assert.Throws<DataOptionException>(() => DatasetCatalog.Recipe(new DatasetSpec { Source = "x", ShortSide = 50 }, false, 64, 64))!;
        Assert.Multiple(() =>
        {
            Assert.That(flip.Field, Is.EqualTo(DataField.Flip));
            Assert.That(flip.Message, Does.Contain("left/right"));
            Assert.That(small.Field, Is.EqualTo(DataField.ShortSide));
        });
    }

    [Test]
    public void TheCommandLineNamesTheOptionOfABadRecipeValue()
    {
        var (c1, _, e1) = Run("datasets", "show", "synthetic-detection", "--flip", "on");
        var (c2, _, e2) = Run("datasets", "show", "synthetic-actions", "--crop", "random:2");
        var (c3, _, e3) = Run("train", "--data", "synthetic-actions", "--mean", "0.4,0.4", "--epochs", "1");
        var (c4, _, e4) = Run("datasets", "show", "synthetic-actions", "--classes", "5", "--flip", "on");
        var (c5, _, e5) = Run("datasets", "show", "synthetic-actions", "--classes", "9", "--reverse", "on");
        var (c6, _, e6) = Run("datasets", "show", "synthetic-detection", "--reverse", "on");
        var (c7, o7, _) = Run("datasets", "show", "synthetic-actions", "--reverse", "on");
        Assert.Multiple(() =>
        {
            Assert.That(new[] { c1, c2, c3, c4, c5, c6 }, Has.None.Zero);
            Assert.That(e5, Does.Contain("--reverse").And.Contain("'speed up' into 'slow down'"), "reversal needs every class's partner");
            Assert.That(e6, Does.Contain("--reverse").And.Contain("played backwards"));
            Assert.That(c7, Is.Zero);
            Assert.That(o7, Does.Contain("time reversal p=0.5"), "synthetic-actions relabels reversed clips");
            Assert.That(e4, Does.Contain("--flip").And.Contain("'rotate clockwise' into 'rotate counter-clockwise'"), "a flip needs every class's mirror");
            Assert.That(e1, Does.Contain("--flip").And.Contain("left/right"));
            Assert.That(e2, Does.Contain("--crop"));
            Assert.That(e3, Does.Contain("--mean").And.Contain("3 values"));
        });
    }

    /// <summary>Eight 96x64 H.264 files in a list (four classes).</summary>
    string MakeList()
    {
        DataTestSupport.RequireFfmpeg();
        var codec = RealVideoFixtures.Codecs[0];
        var first = RealVideoFixtures.Make(_dir, codec)!;
        var lines = new List<string>();
        for (int i = 0; i < 8; i++)
        {
            string f = Path.Combine(_dir, $"clip{i}.mp4");
            File.Copy(first, f);
            lines.Add($"clip{i}.mp4 {i % 4}");
        }
        string list = Path.Combine(_dir, "list.txt");
        File.WriteAllLines(list, lines);
        return list;
    }

    [Test]
    public void TrainingOnVideoFilesUsesTheAskedSizeAndSavesWhatSyntheticDataOfThatSizeSaves()
    {
        string list = MakeList();
        var config = new TrainConfig { Model = "r21d-micro", BatchSize = 2, Epochs = 1, MaxStepsPerEpoch = 1, Workers = 1 };
        TrainResult RunOn(DatasetSpec spec)
        {
            var train = DatasetCatalog.Open(spec, DataSplit.Train);
            var val = DatasetCatalog.Open(spec with { ValCount = 2 }, DataSplit.Validation);
            Assert.That((train.ClipFrames, train.Transform.Height, train.Transform.Width), Is.EqualTo((8, 64, 64)));
            return new Trainer(config, Device.CreateCpu("recipe-train"), _ => { }).Run(train, val);
        }
        var files = RunOn(new DatasetSpec { Source = list, Frames = 8, Height = 64, Width = 64, Classes = 4 });
        var synthetic = RunOn(new DatasetSpec { Source = DatasetCatalog.Actions, Frames = 8, Height = 64, Width = 64, Classes = 4, TrainCount = 8 });
        Assert.That(files.SavedActivationBytes, Is.EqualTo(synthetic.SavedActivationBytes), "64x64 inputs from 96x64 files, not the decoded size");
    }

    [Test]
    public void DumpShowsRandomCropsInTrainingAndTheCentreCropInEvaluation()
    {
        string list = MakeList();
        string dump = Path.Combine(_dir, "strips");
        var (code, o, e) = Run("datasets", "show", list, "--frames", "4", "--size", "32", "--dump", dump);
        Assert.That(code, Is.Zero, e);
        var files = Directory.GetFiles(dump, "*.png").Order().ToArray();
        Assert.That(files, Has.Length.EqualTo(4), o);
        var img = ImageResult.FromMemory(File.ReadAllBytes(files[0]), ColorComponents.RedGreenBlue);
        Assert.That((img.Width, img.Height), Is.EqualTo((4 * 32, 3 * 32)), "frames across, three views down");
        int row = 4 * 32 * 32 * 3;
        var (train0, train1, eval) = (img.Data.AsSpan(0, row).ToArray(), img.Data.AsSpan(row, row).ToArray(), img.Data.AsSpan(2 * row, row).ToArray());
        Assert.Multiple(() =>
        {
            Assert.That(train0, Is.Not.EqualTo(train1), "epochs draw other crops");
            Assert.That(train0, Is.Not.EqualTo(eval), "training is not the centre crop");
        });

        // synthetic data: no augmentation, all three views are the frames themselves
        var (code2, _, e2) = Run("datasets", "show", "synthetic-actions", "--frames", "4", "--size", "16", "--dump", Path.Combine(_dir, "synthetic"));
        Assert.That(code2, Is.Zero, e2);
        var s = ImageResult.FromMemory(File.ReadAllBytes(Directory.GetFiles(Path.Combine(_dir, "synthetic"), "*.png").Order().First()), ColorComponents.RedGreenBlue);
        int srow = 4 * 16 * 16 * 3;
        Assert.That(s.Data.AsSpan(0, srow).ToArray(), Is.EqualTo(s.Data.AsSpan(2 * srow, srow).ToArray()));
    }

    [Test]
    public void ThroughputSaysWhetherTheLoaderOrTheModelIsSlower()
    {
        string list = MakeList();
        var (code, o, e) = Run("datasets", "show", list, "--frames", "4", "--size", "32", "--throughput", "--batches", "2", "--batch-size", "2");
        Assert.That(code, Is.Zero, e);
        Assert.That(o, Does.Contain("clips/s with 2 workers").And.Contain("training step of r21d-micro").And.Match("the (loader|model) is the bottleneck"));
    }

    [Test]
    public void TheInfoStoreKeepsEntriesUntilTheFileChanges()
    {
        string video = Path.Combine(_dir, "v.bin");
        File.WriteAllBytes(video, new byte[10]);
        string file = Path.Combine(_dir, "store", "video-info.tsv");
        new VideoInfoStore(file).Put(video, new VideoInfo(12, 29.97, 48, 64), counted: true);
        File.AppendAllText(file, "torn\tline\n");
        var reopened = new VideoInfoStore(file);
        Assert.That(reopened.TryGet(video, out var info, out bool counted), Is.True);
        Assert.That((info, counted), Is.EqualTo((new VideoInfo(12, 29.97, 48, 64), true)));
        File.WriteAllBytes(video, new byte[11]); // changed: probe again
        Assert.That(new VideoInfoStore(file).TryGet(video, out _, out _), Is.False);
    }
}
