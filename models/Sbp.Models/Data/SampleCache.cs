using System.Collections.Concurrent;

namespace Sbp.Models.Data;

/// <summary>
/// The samples of a deterministic dataset (a synthetic one: sample i is a function of the seed and i) kept after
/// their first rendering, until <see cref="CapacityBytes"/> is reached; later samples are rendered every time. An
/// epoch visits samples in random order, so filling once beats evicting. Thread-safe; cached samples are shared
/// and never modified (the loader copies them into batches).
/// </summary>
public sealed class SampleCache(long capacityBytes)
{
    readonly ConcurrentDictionary<int, VideoSample> _samples = new();
    long _bytes;

    public long CapacityBytes { get; } = capacityBytes >= 0 ? capacityBytes
        : throw new ArgumentOutOfRangeException(nameof(capacityBytes), $"SampleCache: the capacity must be >= 0 bytes (got {capacityBytes}).");

    /// <summary>Bytes of the samples held (frames and per-frame labels).</summary>
    public long Bytes => Interlocked.Read(ref _bytes);

    public int Count => _samples.Count;

    /// <summary>Sample <paramref name="index"/>: the cached one, or <paramref name="render"/>'s, kept if it fits.</summary>
    public VideoSample GetOrRender(int index, Func<int, VideoSample> render)
    {
        if (_samples.TryGetValue(index, out var cached)) return cached;
        var sample = render(index);
        long size = sample.Clip.Data.LongLength + (sample.FrameLabels?.LongLength ?? 0) * sizeof(int);
        if (Interlocked.Add(ref _bytes, size) > CapacityBytes || !_samples.TryAdd(index, sample))
            Interlocked.Add(ref _bytes, -size);   // over budget, or another thread cached it first
        return sample;
    }

    /// <summary>
    /// Renders samples 0 .. count - 1 into the cache on all cores when all of them fit (<paramref name="bytesEach"/> each, as
    /// counted by <see cref="GetOrRender"/>); nothing otherwise.
    /// </summary>
    public void Preload(int count, long bytesEach, Func<int, VideoSample> render)
    {
        if (count * bytesEach > CapacityBytes) return;
        Parallel.For(0, count, i => GetOrRender(i, render));
    }
}
