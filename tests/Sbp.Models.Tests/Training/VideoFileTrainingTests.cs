using Sbp.Models.Data;
using Sbp.Models.Tests.Data;
using Sbp.Models.Training;
using Sbp.Tensors;

namespace Sbp.Models.Tests.Training;

/// <summary>
/// A dataset written by `datasets make` as video files trains through the FFmpeg loader (issue 7):
/// full backprop and SBP runs over the mp4 files, the same first loss as the in-memory data.
/// </summary>
public class VideoFileTrainingTests
{
    [Test]
    public void AMadeVideoDatasetTrainsThroughTheFfmpegLoader()
    {
        DataTestSupport.RequireFfmpeg();
        var dir = DataTestSupport.TempDir("video-training");
        try
        {
            var options = new SyntheticActionsOptions { Count = 8, Classes = 4, Frames = 8, Height = 16, Width = 16, Seed = 5 };
            var train = new SyntheticActions(options, DataSplit.Train);
            var val = new SyntheticActions(options with { Count = 4 }, DataSplit.Validation);
            DatasetWriter.Write(dir, train, val, new DatasetWriterOptions { Storage = VideoStorage.H264, Crf = 10 });
            var spec = new DatasetSpec { Source = dir };
            var files = DatasetCatalog.Open(spec, DataSplit.Train);
            Assert.That(files, Is.TypeOf<VideoListDataset>(), "the folder is read as video files through the list file");
            var config = new TrainConfig { Model = "swin-nano", Epochs = 2, BatchSize = 4, Workers = 1, Mode = TrainMode.Sbp, Keep = 0.5 };
            var fromFiles = new Trainer(config, Device.CreateCpu("files"), _ => { }).Run(files, DatasetCatalog.Open(spec, DataSplit.Validation));
            var inMemory = new Trainer(config, Device.CreateCpu("memory"), _ => { }).Run(train, val);
            Assert.That(fromFiles.Steps, Is.EqualTo(4));
            Assert.That(fromFiles.Epochs.Select(e => e.Top1), Has.All.InRange(0.0, 1.0));
            // Lossy H.264 at crf 10: the first loss matches the uncompressed clips to a few parts per thousand.
            Assert.That(fromFiles.LossCurve[0].Loss, Is.EqualTo(inMemory.LossCurve[0].Loss).Within(0.01));
            Assert.That(fromFiles.LossCurve.All(p => double.IsFinite(p.Loss)), Is.True);
        }
        finally
        {
            DataTestSupport.Delete(dir);
        }
    }
}
