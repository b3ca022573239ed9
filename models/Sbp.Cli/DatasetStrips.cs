using System.Diagnostics;
using System.Globalization;
using Sbp.Models.Data;
using Sbp.Models.Training;
using Sbp.Tensors;
using StbImageWriteSharp;

namespace Sbp.Cli;

/// <summary>What `sbp datasets show` does beyond printing: PNG strips of what the model sees (--dump) and loader throughput against a training step (--batches, --throughput).</summary>
static class DatasetStrips
{
    /// <summary>
    /// One PNG per sample: the clip's frames left to right; rows: the training view of epochs 0 and 1 (random
    /// crop and flip as the loader draws them) and the evaluation view (centre crop), after the transform and
    /// undoing its normalisation.
    /// </summary>
    public static void Write(TextWriter o, IVideoDataset data, string dir, int count)
    {
        var device = Device.CreateCpu("datasets-dump");
        var tf = data.Transform;
        var train = new VideoLoader(data, new VideoLoaderOptions { BatchSize = 1, Train = true, Workers = 1 }, device, new DataIssues(m => o.WriteLine(m)));
        var eval = new VideoLoader(data, new VideoLoaderOptions { BatchSize = 1, Train = false, Workers = 1 }, device, train.Issues);
        int T = data.ClipFrames, H = tf.Height, W = tf.Width;
        for (int i = 0; i < count; i++)
        {
            var strip = new byte[3 * H * T * W * 3];
            string name = "";
            int row = 0;
            foreach (var (loader, epoch) in new[] { (train, 0), (train, 1), (eval, 0) })
            {
                using var batch = loader.Batch([i], epoch);
                name = batch.Names[0];
                var x = batch.Clips.ToArray(); // [1, 3, T, H, W]
                for (int c = 0; c < 3; c++)
                    for (int t = 0; t < T; t++)
                        for (int y = 0; y < H; y++)
                            for (int xx = 0; xx < W; xx++)
                            {
                                float v = (x[((c * T + t) * H + y) * W + xx] * tf.Std[c] + tf.Mean[c]) * 255f;
                                strip[(((row * H + y) * T + t) * W + xx) * 3 + c] = (byte)Math.Clamp((int)MathF.Round(v), 0, 255);
                            }
                row++;
            }
            string file = Path.Combine(dir, $"sample-{i:D3}.png");
            using (var f = File.Create(file))
                new ImageWriter().WritePng(strip, T * W, 3 * H, ColorComponents.RedGreenBlue, f);
            o.WriteLine($"wrote {file} ({name}): {T} frames of {H}x{W}; rows: training view epoch 0, epoch 1, evaluation view");
        }
    }

    /// <summary>Loads batches through the loader and times them; with <paramref name="stepModel"/> also a training step on such a batch, and says which is slower.</summary>
    public static void Bench(TextWriter o, IVideoDataset data, int batches, int batchSize, int workers, string? stepModel)
    {
        var device = Device.CreateCpu("datasets-show");
        var loader = new VideoLoader(data, new VideoLoaderOptions
        {
            BatchSize = Math.Min(batchSize, data.Count),
            Workers = workers,
            QueueCapacity = Math.Max(workers, 4),
        }, device, new DataIssues(m => o.WriteLine(m)));
        var sw = Stopwatch.StartNew();
        int n = 0, samples = 0;
        string shapes = "";
        for (int epoch = 0; n < batches; epoch++)
            foreach (var b in loader.Epoch(epoch))
            {
                using (b)
                {
                    shapes = $"clips {b.Clips.Shape} labels {b.Labels.Shape}";
                    samples += b.Size;
                }
                if (++n == batches) break;
            }
        double s = sw.Elapsed.TotalSeconds, loaderRate = samples / s;
        var inv = CultureInfo.InvariantCulture;
        o.WriteLine(string.Create(inv,
            $"loaded {n} batches ({samples} clips, {shapes}) in {s:F2} s: {loaderRate:F1} clips/s with {workers} workers; unreadable videos: {loader.Issues.CorruptCount}"));
        if (data is VideoListDataset or SegmentDataset) o.WriteLine($"video files decoded {FfmpegVideoSource.DefaultDecoder}");
        if (stepModel is null) return;
        using var batch = loader.Batch(loader.Order(0).Take(loader.Options.BatchSize).ToArray());
        double ms = Trainer.StepMilliseconds(stepModel, data, batch, steps: 3);
        double modelRate = batch.Size / (ms / 1000);
        o.WriteLine(string.Create(inv, $"training step of {stepModel} on these batches (full backprop, this machine's threads): {ms:F0} ms = {modelRate:F1} clips/s"));
        o.WriteLine(loaderRate < modelRate
            ? string.Create(inv, $"the loader is the bottleneck ({loaderRate:F1} < {modelRate:F1} clips/s): add --workers, lower --short-side, or give shorter keyframe intervals")
            : string.Create(inv, $"the model is the bottleneck ({modelRate:F1} <= {loaderRate:F1} clips/s): the loader keeps up"));
    }
}
