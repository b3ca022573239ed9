using System.Collections.Concurrent;
using Sbp.Tensors;

namespace Sbp.Models.Data;

/// <summary>Settings of a <see cref="VideoLoader"/>.</summary>
public sealed record VideoLoaderOptions
{
    public int BatchSize { get; init; } = 8;
    /// <summary>Training mode: shuffled order, random clip sampling and augmentation. Off: dataset order, centre clips.</summary>
    public bool Train { get; init; } = true;
    /// <summary>Drop the last incomplete batch (default: in training).</summary>
    public bool? DropLast { get; init; }
    public ulong Seed { get; init; } = 1;
    /// <summary>Decoding threads.</summary>
    public int Workers { get; init; } = 2;
    /// <summary>Batches being prepared or waiting at most (bounds memory); raised to <see cref="Workers"/> if below.</summary>
    public int QueueCapacity { get; init; } = 4;
    /// <summary>How clips become model input; null: the dataset's own (<see cref="IVideoDataset.Transform"/>).</summary>
    public ClipTransform? Transform { get; init; }
    public CorruptVideoPolicy OnCorrupt { get; init; } = CorruptVideoPolicy.Skip;
    /// <summary>How many following samples to try in place of an unreadable one before failing.</summary>
    public int MaxReplacements { get; init; } = 16;
    /// <summary>Data parallelism: this rank's shard of each epoch (0 .. <see cref="Ranks"/> - 1).</summary>
    public int Rank { get; init; }
    /// <summary>Data parallelism: how many ranks share each epoch (1: all samples here).</summary>
    public int Ranks { get; init; } = 1;
}

/// <summary>
/// Batches of a dataset as engine tensors (see <see cref="VideoBatch"/> for the layout), decoded and
/// augmented on background threads through a bounded <see cref="BackgroundQueue{T}"/>; tensors are
/// created on the consumer's thread, on <see cref="Device"/>. Deterministic: epoch e's order is a
/// permutation seeded by (seed, e), and sample i's random choices by (seed, e, i), whatever the worker count.
/// An unreadable video (<see cref="VideoReadException"/>) is warned about once, counted in
/// <see cref="Issues"/> and replaced by the next readable sample, or fails the epoch with
/// <see cref="CorruptVideoPolicy.Fail"/>.
/// </summary>
public sealed class VideoLoader
{
    readonly ConcurrentDictionary<int, bool> _bad = new();

    public VideoLoader(IVideoDataset dataset, VideoLoaderOptions options, Device? device = null, DataIssues? issues = null)
    {
        if (options.BatchSize <= 0) throw new ArgumentException($"VideoLoader: batch size must be > 0 (got {options.BatchSize}).");
        if (options.Ranks < 1 || options.Rank < 0 || options.Rank >= options.Ranks)
            throw new ArgumentException($"VideoLoader: rank {options.Rank} of {options.Ranks} ranks: need 0 <= rank < ranks.");
        if (options.Workers <= 0 || options.QueueCapacity <= 0)
            throw new ArgumentException($"VideoLoader: workers and queue capacity must be > 0 (got {options.Workers}, {options.QueueCapacity}).");
        Dataset = dataset;
        Options = options;
        Device = device ?? Device.Default;
        Issues = issues ?? new DataIssues();
        if (options.Train && Transform.ReverseProbability > 0 && Enumerable.Range(0, dataset.ClassNames.Count).FirstOrDefault(c => dataset.ReversedLabel(c) is null, -1) is var lone and >= 0)
            throw new InvalidOperationException($"VideoLoader: the transform plays clips backwards, but {dataset.GetType().Name} does not say what a reversed clip of class {lone} " +
                $"('{dataset.ClassNames[lone]}') is (IVideoDataset.ReversedLabel); leave time reversal off.");
        if (BatchTooLarge(options.BatchSize, dataset, Transform) is { } tooLarge)
            throw new ArgumentException($"VideoLoader: {tooLarge}; lower the batch size, the frames or the size.");
        if (BatchesPerEpoch == 0)
            throw new ArgumentException(options.Ranks == 1
                ? $"VideoLoader: the dataset has {dataset.Count} samples, fewer than one batch of {options.BatchSize} (and the last incomplete batch is dropped)."
                : $"VideoLoader: the dataset has {dataset.Count} samples, {SamplesPerEpoch} per rank over {options.Ranks} ranks, fewer than one batch of {options.BatchSize} per rank (and the last incomplete batch is dropped).");
    }

    /// <summary>
    /// A batch is one float array (then one tensor): why <paramref name="batchSize"/> clips of <paramref name="dataset"/>
    /// through <paramref name="transform"/> (default: the dataset's) cannot be one, or null when they can. Checked when a
    /// loader is made, before any clip is read; a program checks it earlier to name its own options.
    /// </summary>
    public static string? BatchTooLarge(int batchSize, IVideoDataset dataset, ClipTransform? transform = null)
    {
        var tf = transform ?? dataset.Transform;
        long values = (long)batchSize * VideoClip.Channels * dataset.ClipFrames * tf.Height * tf.Width;
        return values <= Array.MaxLength ? null
            : $"a batch of {batchSize} clips of {dataset.ClipFrames} frames of {tf.Height}x{tf.Width}x{VideoClip.Channels} is {values:N0} values, more than one array holds ({Array.MaxLength:N0})";
    }

    public IVideoDataset Dataset { get; }
    public VideoLoaderOptions Options { get; }
    public Device Device { get; }
    public DataIssues Issues { get; }

    /// <summary>The transform in use: the options' or the dataset's.</summary>
    public ClipTransform Transform => Options.Transform ?? Dataset.Transform;

    bool DropLast => Options.DropLast ?? Options.Train;

    public int BatchesPerEpoch => DropLast ? SamplesPerEpoch / Options.BatchSize : (SamplesPerEpoch + Options.BatchSize - 1) / Options.BatchSize;

    /// <summary>
    /// Samples this rank sees per epoch: all of them with one rank; with several, training gives each rank
    /// ceil(N / ranks) (PyTorch's DistributedSampler) and evaluation every rank-th sample from its rank on.
    /// </summary>
    public int SamplesPerEpoch
    {
        get
        {
            int n = Dataset.Count, r = Options.Ranks;
            return r == 1 ? n : Options.Train ? (n + r - 1) / r : (n - Options.Rank + r - 1) / r;
        }
    }

    /// <summary>
    /// The sample order of an epoch on this rank. Training: a permutation seeded by (seed, epoch), the same on every
    /// rank; with several ranks it is padded to a multiple of the rank count by repeating its head and rank r takes
    /// positions r, r + ranks, ... (PyTorch's DistributedSampler), so ranks' shards are disjoint but for the padding.
    /// Evaluation: dataset order, every rank-th sample, no padding (each sample counted once over the ranks).
    /// </summary>
    public int[] Order(int epoch)
    {
        int n = Dataset.Count, ranks = Options.Ranks, rank = Options.Rank;
        if (!Options.Train) return Enumerable.Range(0, n).Where(i => i % ranks == rank).ToArray();
        var all = SampleRng.For(Options.Seed, "loader/shuffle", epoch).Permutation(n);
        if (ranks == 1) return all;
        var shard = new int[(n + ranks - 1) / ranks];
        for (int k = 0; k < shard.Length; k++) shard[k] = all[(rank + (long)k * ranks) % n];
        return shard;
    }

    /// <summary>The batches of one epoch. Dispose each batch; leaving the loop early stops the workers.</summary>
    public IEnumerable<VideoBatch> Epoch(int epoch)
    {
        var order = Order(epoch);
        int b = Options.BatchSize, n = BatchesPerEpoch;
        using var queue = new BackgroundQueue<HostBatch>(n,
            (k, token) => Prepare(order.AsSpan(k * b, Math.Min(b, order.Length - k * b)).ToArray(), epoch, token),
            Options.Workers, Math.Max(Options.QueueCapacity, Options.Workers), "video loader");
        while (queue.TryTake(out var host)) yield return host.ToDevice(Device);
    }

    /// <summary>A single batch of the given samples, prepared on this thread (for evaluation and tests).</summary>
    public VideoBatch Batch(IReadOnlyList<int> indices, int epoch = 0) => Prepare(indices.ToArray(), epoch, CancellationToken.None).ToDevice(Device);

    /// <summary>A batch in host memory, as the workers prepare it.</summary>
    sealed record HostBatch(float[] Clips, int[] Labels, int Frames, bool PerFrame, int[] Indices, string[] Names, int Height, int Width)
    {
        public VideoBatch ToDevice(Device device)
        {
            int B = Indices.Length;
            var clips = Tensor.FromArray(Clips, new Shape(B, VideoClip.Channels, Frames, Height, Width), device);
            try
            {
                var labels = Tensor.FromArray(Labels, PerFrame ? new Shape(B, Frames) : new Shape(B), device);
                return new VideoBatch(clips, labels, Indices, Names);
            }
            catch
            {
                clips.Dispose();
                throw;
            }
        }
    }

    HostBatch Prepare(int[] indices, int epoch, CancellationToken token)
    {
        var tf = Transform;
        float[]? clips = null;
        int[]? labels = null;
        int frames = 0, B = indices.Length;
        var used = new int[B];
        var names = new string[B];
        var together = ReadTogether(indices, epoch);
        for (int k = 0; k < B; k++)
        {
            token.ThrowIfCancellationRequested();
            var (index, sample) = together[k] is { } s ? (indices[k], s) : Load(indices[k], epoch);
            var rng = Options.Train ? SampleRng.For(Options.Seed, "loader/sample", epoch, index).Fork(1) : null;
            if (clips is null)
            {
                frames = sample.Clip.Frames;
                clips = new float[checked(B * tf.FloatsPerClip(frames))];
                labels = new int[Dataset.PerFrameLabels ? B * frames : B];
            }
            else if (sample.Clip.Frames != frames)
                throw new InvalidOperationException($"VideoLoader: sample {index} has {sample.Clip.Frames} frames, the batch's first has {frames}; use a clip sampler with a fixed frame count.");
            int per = tf.FloatsPerClip(frames);
            var changes = tf.Apply(sample.Clip, clips.AsSpan(k * per, per), rng);
            if (Dataset.PerFrameLabels)
            {
                var fl = sample.FrameLabels ?? throw new InvalidOperationException($"VideoLoader: sample {index} of a detection dataset has no per-frame labels.");
                bool reversed = (changes & ClipChanges.Reversed) != 0;   // the labels follow their frames
                for (int t = 0; t < frames; t++) labels![k * frames + t] = Dataset.ChangedLabel(fl[reversed ? frames - 1 - t : t], changes);
            }
            else labels![k] = Dataset.ChangedLabel(sample.Label, changes);
            used[k] = index;
            names[k] = sample.Name;
        }
        return new HostBatch(clips!, labels!, frames, Dataset.PerFrameLabels, used, names, tf.Height, tf.Width);
    }

    /// <summary>The samples of a batch the dataset reads together (null: read one by one); known-bad ones are left to <see cref="Load"/>.</summary>
    VideoSample?[] ReadTogether(int[] indices, int epoch)
    {
        var good = Enumerable.Range(0, indices.Length).Where(k => !_bad.ContainsKey(indices[k])).ToArray();
        var result = new VideoSample?[indices.Length];
        var read = Dataset.TryGetMany(good.Select(k => indices[k]).ToArray(), good.Select(k => RngOf(indices[k], epoch)).ToArray());
        for (int j = 0; j < good.Length; j++) result[good[j]] = read[j];
        return result;
    }

    SampleRng? RngOf(int index, int epoch) => Options.Train ? SampleRng.For(Options.Seed, "loader/sample", epoch, index).Fork(0) : null;

    /// <summary>Sample <paramref name="index"/>, or with the skip policy the next readable one.</summary>
    (int Index, VideoSample Sample) Load(int index, int epoch)
    {
        int count = Dataset.Count;
        for (int attempt = 0; attempt <= Options.MaxReplacements; attempt++)
        {
            int i = (index + attempt) % count;
            if (_bad.ContainsKey(i)) continue;
            try
            {
                return (i, Dataset.Get(i, RngOf(i, epoch)));
            }
            catch (VideoReadException e) when (Options.OnCorrupt == CorruptVideoPolicy.Skip)
            {
                _bad[i] = true;
                Issues.ReportCorrupt(e.Path, e.Message);
            }
        }
        throw new VideoReadException(index.ToString(System.Globalization.CultureInfo.InvariantCulture),
            $"sample {index} and the {Options.MaxReplacements} samples after it are all unreadable ({Issues.CorruptCount} unreadable videos so far)");
    }
}
