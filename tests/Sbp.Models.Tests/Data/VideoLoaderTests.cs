using Sbp.Models.Data;
using Sbp.Tensors;

namespace Sbp.Models.Tests.Data;

public class VideoLoaderTests
{
    static readonly ClipTransform Plain = new() { Height = 16, Width = 16, Mean = [0f, 0f, 0f], Std = [1f, 1f, 1f] };

    [Test]
    public void BatchesAreChannelsFirstClipsWithTheirLabelsOnTheChosenDevice()
    {
        var device = Device.CreateCpu("loader-shapes");
        var data = DataTestSupport.SmallActions(count: 12);
        var loader = new VideoLoader(data, new VideoLoaderOptions { BatchSize = 4, Transform = Plain, Workers = 2 }, device);
        int batches = 0;
        foreach (var b in loader.Epoch(0))
        {
            using (b)
            {
                batches++;
                Assert.That(b.Clips.Shape, Is.EqualTo(new Shape(4, 3, 8, 16, 16)));
                Assert.That(b.Labels.Shape, Is.EqualTo(new Shape(4)));
                Assert.That((b.Clips.DType, b.Labels.DType, b.Clips.Device), Is.EqualTo((DType.Float32, DType.Int32, device)));
                Assert.That(b.Labels.ToIntArray(), Is.EqualTo(b.Indices.Select(i => data.Get(i, null).Label).ToArray()));
                // sample k of the batch is the dataset's clip, transposed to [C, T, H, W]
                var clips = b.Clips.ToArray();
                int per = Plain.FloatsPerClip(8);
                for (int k = 0; k < 4; k++)
                {
                    var expected = new float[per];
                    Plain.Apply(data.Get(b.Indices[k], null).Clip, expected, null);
                    Assert.That(clips.AsSpan(k * per, per).ToArray(), Is.EqualTo(expected), $"batch {batches}, sample {k}");
                }
            }
        }
        Assert.That((batches, device.Pool.InUseBytes), Is.EqualTo((3, 0L)), "batches, and bytes left on the device after disposing them");
    }

    [Test]
    public void A_flipped_synthetic_clip_is_the_mirror_image_under_the_mirrored_label()
    {
        // flip p = 1 against p = 0 on the same indices: every clip mirrored in x, right/left and clockwise/counter-clockwise swapped.
        var data = DataTestSupport.SmallActions(count: 16);
        int[] indices = [.. Enumerable.Range(0, 8)];
        VideoBatch Load(float p) => new VideoLoader(data, new VideoLoaderOptions { BatchSize = 8, Transform = Plain with { FlipProbability = p } }, Device.CreateCpu("loader-flip")).Batch(indices);
        using var plain = Load(0f);
        using var flipped = Load(1f);
        Assert.That(flipped.Labels.ToIntArray(), Is.EqualTo(new[] { 1, 0, 2, 3, 5, 4, 6, 7 }), "classes 0-7 of synthetic actions, flipped");
        Assert.That(Enumerable.Range(0, 11).Select(SyntheticActions.MirrorOf).Select(SyntheticActions.MirrorOf), Is.EqualTo(Enumerable.Range(0, 11)), "a flip twice is no flip");
        var a = plain.Clips.ToArray();
        var b = flipped.Clips.ToArray();
        for (int row = 0; row < a.Length / 16; row++)
            for (int x = 0; x < 16; x++)
                Assert.That(b[row * 16 + x], Is.EqualTo(a[row * 16 + 15 - x]), $"row {row}, column {x}");
    }

    [Test]
    public void A_reversed_synthetic_clip_is_its_reverse_partner_under_the_partner_label()
    {
        // reversal p = 1 against p = 0: frames in reverse order, every class relabelled with its reverse partner;
        // with a flip as well, both maps apply (clockwise -> counter-clockwise -> clockwise).
        var data = DataTestSupport.SmallActions(count: 16);
        int[] indices = [.. Enumerable.Range(0, 8)];
        VideoBatch Load(ClipTransform tf) => new VideoLoader(data, new VideoLoaderOptions { BatchSize = 8, Transform = tf }, Device.CreateCpu("loader-reverse")).Batch(indices);
        using var plain = Load(Plain);
        using var reversed = Load(Plain with { ReverseProbability = 1f });
        using var both = Load(Plain with { ReverseProbability = 1f, FlipProbability = 1f });
        Assert.Multiple(() =>
        {
            Assert.That(reversed.Labels.ToIntArray(), Is.EqualTo(new[] { 1, 0, 3, 2, 5, 4, 7, 6 }), "classes 0-7 of synthetic actions, reversed");
            Assert.That(both.Labels.ToIntArray(), Is.EqualTo(new[] { 0, 1, 3, 2, 4, 5, 7, 6 }), "flipped and reversed");
        });
        var a = plain.Clips.ToArray();
        var b = reversed.Clips.ToArray();
        int frame = 16 * 16, T = 8;
        for (int plane = 0; plane < a.Length / (T * frame); plane++)
            for (int t = 0; t < T; t++)
                Assert.That(b.AsSpan((plane * T + t) * frame, frame).ToArray(), Is.EqualTo(a.AsSpan((plane * T + T - 1 - t) * frame, frame).ToArray()), $"plane {plane}, frame {t}");
    }

    [Test]
    public void A_dataset_without_a_reversal_rule_refuses_reversed_clips()
    {
        // refused when the loader is made, before any clip is read; an evaluation loader never reverses and is accepted
        var data = new InterfaceDefaults(DataTestSupport.SmallActions(count: 2));
        var e = Assert.Throws<InvalidOperationException>(() => new VideoLoader(data, new VideoLoaderOptions { BatchSize = 2, Transform = Plain with { ReverseProbability = 1f } }));
        Assert.That(e!.Message, Does.Contain("plays clips backwards").And.Contain("'move right'").And.Contain("time reversal off"));
        using var eval = new VideoLoader(data, new VideoLoaderOptions { BatchSize = 2, Train = false, Transform = Plain with { ReverseProbability = 1f } }, Device.CreateCpu("loader-no-rule")).Batch([0, 1]);
        Assert.That(eval.Labels.ToIntArray(), Is.EqualTo(new[] { 0, 1 }));
    }

    [Test]
    public void AnEpochIsTheSameWhateverTheWorkerCountAndEpochsDiffer()
    {
        var data = DataTestSupport.SmallActions(count: 16);
        var tf = ClipTransform.KineticsTrain(12) with { FlipProbability = 0f };
        (int[] Indices, float[] Clips)[] Run(int workers, int epoch)
        {
            var loader = new VideoLoader(data, new VideoLoaderOptions { BatchSize = 4, Transform = tf, Workers = workers, QueueCapacity = 4, Seed = 9 },
                Device.CreateCpu("loader-determinism"));
            return loader.Epoch(epoch).Select(b => { using (b) return (b.Indices.ToArray(), b.Clips.ToArray()); }).ToArray();
        }
        var one = Run(1, 0);
        var three = Run(3, 0);
        var next = Run(2, 1);
        Assert.Multiple(() =>
        {
            Assert.That(three.Select(b => b.Indices), Is.EqualTo(one.Select(b => b.Indices)));
            Assert.That(three.Select(b => b.Clips), Is.EqualTo(one.Select(b => b.Clips)));
            Assert.That(one.SelectMany(b => b.Indices).Order(), Is.EqualTo(Enumerable.Range(0, 16)), "an epoch visits every sample once");
            Assert.That(one.SelectMany(b => b.Indices), Is.Not.EqualTo(Enumerable.Range(0, 16)), "training order is shuffled");
            Assert.That(next.SelectMany(b => b.Indices), Is.Not.EqualTo(one.SelectMany(b => b.Indices)), "epochs 0 and 1 share an order");
        });
    }

    [Test]
    public void EvaluationKeepsDatasetOrderAndTheLastPartialBatch()
    {
        var data = DataTestSupport.SmallActions(count: 10);
        var loader = new VideoLoader(data, new VideoLoaderOptions { BatchSize = 4, Train = false, Transform = Plain }, Device.CreateCpu("loader-eval"));
        var batches = loader.Epoch(0).Select(b => { using (b) return (b.Indices.ToArray(), b.Clips.Shape[0]); }).ToArray();
        Assert.That(batches.Select(b => b.Item2), Is.EqualTo(new[] { 4, 4, 2 }));
        Assert.That(batches.SelectMany(b => b.Item1), Is.EqualTo(Enumerable.Range(0, 10)));
    }

    [Test]
    public void DetectionBatchesCarryPerFrameLabels()
    {
        var data = new SyntheticDetection(new SyntheticDetectionOptions { Count = 6, Frames = 48, Height = 16, Width = 16, MaxSegment = 16, MaxGap = 8 },
            DataSplit.Train, ClipSampler.Dense(12));
        var loader = new VideoLoader(data, new VideoLoaderOptions { BatchSize = 3, Transform = Plain, Seed = 4 }, Device.CreateCpu("loader-detection"));
        foreach (var b in loader.Epoch(0))
            using (b)
            {
                Assert.That((b.Clips.Shape, b.Labels.Shape), Is.EqualTo((new Shape(3, 3, 12, 16, 16), new Shape(3, 12))));
                var labels = b.Labels.ToIntArray();
                for (int k = 0; k < 3; k++)
                {
                    // the window the loader drew is a contiguous run of the full video's labels
                    var full = new SyntheticDetection(data.Options, DataSplit.Train).Get(b.Indices[k], null).FrameLabels!;
                    var window = labels.AsSpan(k * 12, 12).ToArray();
                    bool found = Enumerable.Range(0, 48 - 12 + 1).Any(s => full.AsSpan(s, 12).SequenceEqual(window));
                    Assert.That(found, $"labels of sample {b.Indices[k]} are not a window of its video's labels");
                }
            }
    }

    [Test]
    public void RejectsADatasetSmallerThanOneBatch()
    {
        var e = Assert.Throws<ArgumentException>(() => new VideoLoader(DataTestSupport.SmallActions(count: 3), new VideoLoaderOptions { BatchSize = 4 }));
        Assert.That(e!.Message, Does.Contain("3 samples, fewer than one batch of 4"));
    }

    [Test]
    public void RejectsABatchLargerThanAnArrayBeforeReadingAClip()
    {
        // 16 x 3 x 100000 x 32 x 32 floats: an int product would wrap to a positive size and fail at the third clip
        var data = new SyntheticActions(new SyntheticActionsOptions { Count = 16, Frames = 100_000 }, DataSplit.Train);
        var e = Assert.Throws<ArgumentException>(() => new VideoLoader(data, new VideoLoaderOptions { BatchSize = 16 }));
        Assert.That(e!.Message, Does.Contain("16 clips of 100000 frames of 32x32x3").And.Contain("more than one array holds"));
        Assert.That(() => new SyntheticActions(new SyntheticActionsOptions { Frames = 16, Height = 100_000, Width = 100_000 }, DataSplit.Train),
            Throws.InstanceOf<DataOptionException>().With.Message.Contains("a frame of 100000x100000x3"));
    }
}
