namespace Sbp.Memory;

/// <summary>
/// A consistent copy of a pool's counters (PyTorch's vocabulary: allocated = in use, reserved =
/// held from the device including the cache). All byte counts are exact.
/// </summary>
public sealed record MemoryStats(
    long InUseBytes,
    long PeakInUseBytes,
    long ReservedBytes,
    long PeakReservedBytes,
    long CachedBytes,
    long LiveBlocks,
    long Allocations,
    long Frees,
    long CacheHits,
    IReadOnlyDictionary<MemoryCategory, long> InUseByCategory,
    IReadOnlyDictionary<MemoryCategory, long> PeakByCategory,
    long? LimitBytes)
{
    public long InUse(MemoryCategory category) => InUseByCategory[category];

    /// <summary>PyTorch's <c>memory_allocated</c>: same as <see cref="InUseBytes"/>.</summary>
    public long MemoryAllocated => InUseBytes;
    /// <summary>PyTorch's <c>max_memory_allocated</c>: same as <see cref="PeakInUseBytes"/>.</summary>
    public long MaxMemoryAllocated => PeakInUseBytes;
    /// <summary>PyTorch's <c>memory_reserved</c>: same as <see cref="ReservedBytes"/>.</summary>
    public long MemoryReserved => ReservedBytes;
    /// <summary>PyTorch's <c>max_memory_reserved</c>: same as <see cref="PeakReservedBytes"/>.</summary>
    public long MaxMemoryReserved => PeakReservedBytes;

    public override string ToString()
    {
        var parts = string.Join(", ", InUseByCategory.Where(kv => kv.Value > 0)
            .Select(kv => $"{kv.Key} {MemoryPool.FormatBytes(kv.Value)}"));
        return $"in use {MemoryPool.FormatBytes(InUseBytes)} (peak {MemoryPool.FormatBytes(PeakInUseBytes)})" +
               $"{(parts.Length > 0 ? ": " + parts : "")}; reserved {MemoryPool.FormatBytes(ReservedBytes)}" +
               $" (cached {MemoryPool.FormatBytes(CachedBytes)})" +
               (LimitBytes is { } l ? $"; limit {MemoryPool.FormatBytes(l)}" : "");
    }
}

/// <summary>One live block in a <see cref="MemoryPool.Snapshot"/>.</summary>
public sealed record BlockInfo(long Id, long Bytes, MemoryCategory Category, string Label, int References);
