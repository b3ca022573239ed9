using System.Text;

namespace Sbp.Memory;

/// <summary>
/// A caching allocator with exact statistics, one per device.
///
/// Policy: requests are rounded up to a multiple of 512 bytes; a freed block goes to a cache keyed
/// by that rounded size and is reused by the next request of the same size, so a training loop
/// that repeats the same shapes stops calling the device allocator after its first step. If a
/// request would take the reserved bytes over <see cref="LimitBytes"/>, or the device allocator
/// fails, the cache is released and the request retried once; then it fails with a
/// <see cref="DeviceOutOfMemoryException"/> that explains who holds the memory.
///
/// "In use" counts the bytes that tensors asked for, per <see cref="MemoryCategory"/>;
/// "reserved" counts rounded blocks held from the device, cached ones included.
/// Thread-safe (one lock); blocks are reference counted.
/// </summary>
public sealed class MemoryPool
{
    public const long Granularity = 512;
    static readonly int CategoryCount = Enum.GetValues<MemoryCategory>().Length;

    readonly IRawAllocator _raw;
    readonly object _lock = new();
    readonly Dictionary<long, Stack<nint>> _cache = new();
    readonly Dictionary<long, MemoryBlock> _live = new();
    readonly long[] _inUse = new long[CategoryCount];
    readonly long[] _peak = new long[CategoryCount];
    long _inUseTotal, _peakTotal, _reserved, _peakReserved, _cached;
    long _nextId, _allocations, _frees, _cacheHits;
    long? _limit;

    public MemoryPool(string name, IRawAllocator raw)
    {
        Name = name;
        _raw = raw;
    }

    public string Name { get; }

    /// <summary>Most bytes the pool may reserve from the device; null for no limit.</summary>
    public long? LimitBytes
    {
        get { lock (_lock) return _limit; }
        set
        {
            if (value is < 0) throw new ArgumentOutOfRangeException(nameof(value), "MemoryPool.LimitBytes must be >= 0 or null.");
            lock (_lock) _limit = value;
        }
    }

    public long InUseBytes { get { lock (_lock) return _inUseTotal; } }
    public long InUse(MemoryCategory category) { lock (_lock) return _inUse[(int)category]; }
    public long ReservedBytes { get { lock (_lock) return _reserved; } }
    public long PeakInUseBytes { get { lock (_lock) return _peakTotal; } }
    public long PeakReservedBytes { get { lock (_lock) return _peakReserved; } }

    // PyTorch's names (torch.cuda.memory_allocated and friends) for readers coming from there.
    /// <summary>PyTorch's <c>memory_allocated</c>: same as <see cref="InUseBytes"/>.</summary>
    public long MemoryAllocated => InUseBytes;
    /// <summary>PyTorch's <c>max_memory_allocated</c>: same as <see cref="PeakInUseBytes"/>.</summary>
    public long MaxMemoryAllocated => PeakInUseBytes;
    /// <summary>PyTorch's <c>memory_reserved</c>: same as <see cref="ReservedBytes"/>.</summary>
    public long MemoryReserved => ReservedBytes;
    /// <summary>PyTorch's <c>max_memory_reserved</c>: same as <see cref="PeakReservedBytes"/>.</summary>
    public long MaxMemoryReserved => PeakReservedBytes;
    /// <summary>PyTorch's <c>reset_peak_memory_stats</c>: same as <see cref="ResetPeak"/>.</summary>
    public void ResetPeakMemoryStats() => ResetPeak();

    public MemoryBlock Allocate(long bytes, MemoryCategory category, string? label = null)
    {
        if (bytes < 0) throw new ArgumentOutOfRangeException(nameof(bytes), $"MemoryPool '{Name}': cannot allocate {bytes} bytes.");
        long rounded = Math.Max(Granularity, (bytes + Granularity - 1) / Granularity * Granularity);
        lock (_lock)
        {
            nint ptr = TakeCached(rounded);
            if (ptr == 0)
            {
                ptr = TryReserve(rounded);
                if (ptr == 0)
                {
                    ReleaseCacheLocked();
                    ptr = TryReserve(rounded);
                }
                if (ptr == 0) throw OutOfMemory(bytes, rounded, category, label);
            }
            var block = new MemoryBlock(this, ++_nextId, ptr, bytes, rounded, category, label ?? OpLabel.Current);
            _live.Add(block.Id, block);
            _allocations++;
            Count(category, bytes);
            return block;
        }
    }

    internal void AddRef(MemoryBlock block)
    {
        lock (_lock)
        {
            if (block.RefCount <= 0) throw new ObjectDisposedException($"{block}", "The memory block was already freed.");
            block.RefCount++;
        }
    }

    /// <summary>Drops one reference; the last one returns the block to the cache.</summary>
    internal void Release(MemoryBlock block)
    {
        lock (_lock)
        {
            if (block.RefCount <= 0) throw new ObjectDisposedException($"{block}", "The memory block was already freed.");
            if (--block.RefCount > 0) return;
            Count(block.Category, -block.Bytes);
            _live.Remove(block.Id);
            _frees++;
            if (!_cache.TryGetValue(block.BlockBytes, out var stack)) _cache[block.BlockBytes] = stack = new Stack<nint>();
            stack.Push(block.Pointer);
            _cached += block.BlockBytes;
            block.Pointer = 0;
        }
    }

    /// <summary>Marks a block as held (or no longer held) by an autograd tape; moves its bytes between categories.</summary>
    internal void SetSavedHold(MemoryBlock block, int delta)
    {
        lock (_lock)
        {
            var before = block.Category;
            block.SavedHolds += delta;
            if (block.SavedHolds < 0) throw new InvalidOperationException($"{block}: saved-hold count went negative.");
            var after = block.Category;
            if (before != after && block.RefCount > 0)
            {
                Count(before, -block.Bytes);
                Count(after, block.Bytes);
            }
        }
    }

    /// <summary>Re-files a live block under another category (e.g. a temporary that becomes a gradient).</summary>
    public void SetCategory(MemoryBlock block, MemoryCategory category)
    {
        lock (_lock)
        {
            var before = block.Category;
            block.BaseCategory = category;
            if (block.RefCount > 0)
            {
                Count(before, -block.Bytes);
                Count(block.Category, block.Bytes);
            }
        }
    }

    /// <summary>Returns every cached (free) block to the device.</summary>
    public void EmptyCache() { lock (_lock) ReleaseCacheLocked(); }

    /// <summary>Starts peak tracking afresh from the current usage.</summary>
    public void ResetPeak()
    {
        lock (_lock)
        {
            _peakTotal = _inUseTotal;
            _peakReserved = _reserved;
            if (CapturePeakBlocks) { _peakBlocks = SnapshotLocked(); _peakOp = OpLabel.Current; }
            Array.Copy(_inUse, _peak, CategoryCount);
        }
    }

    public MemoryStats Stats() { lock (_lock) return StatsUnlocked(); }

    /// <summary>The live blocks, largest first.</summary>
    public IReadOnlyList<BlockInfo> Snapshot()
    {
        lock (_lock) return SnapshotLocked();
    }

    List<BlockInfo> SnapshotLocked() =>
        _live.Values.OrderByDescending(b => b.Bytes).ThenBy(b => b.Id)
            .Select(b => new BlockInfo(b.Id, b.Bytes, b.Category, b.Label, b.RefCount)).ToList();

    void Count(MemoryCategory category, long delta)
    {
        int c = (int)category;
        _inUse[c] += delta;
        _inUseTotal += delta;
        if (_inUse[c] > _peak[c]) _peak[c] = _inUse[c];
        if (_inUseTotal > _peakTotal)
        {
            _peakTotal = _inUseTotal;
            if (CapturePeakBlocks) { _peakBlocks = SnapshotLocked(); _peakOp = OpLabel.Current; }
        }
    }

    List<BlockInfo>? _peakBlocks;
    string? _peakOp;

    /// <summary>
    /// When true, every new peak copies the live blocks (for <see cref="PeakBlocks"/>): a profiling aid
    /// that says what was live at the peak; it costs a snapshot per new peak, so it is off by default.
    /// </summary>
    public bool CapturePeakBlocks { get; set; }

    /// <summary>The live blocks at the latest peak (largest first), with the op label running then; empty unless <see cref="CapturePeakBlocks"/>.</summary>
    public (IReadOnlyList<BlockInfo> Blocks, string Op) PeakBlocks
    {
        get { lock (_lock) return (_peakBlocks ?? [], _peakOp ?? ""); }
    }

    nint TakeCached(long rounded)
    {
        if (!_cache.TryGetValue(rounded, out var stack) || stack.Count == 0) return 0;
        _cached -= rounded;
        _cacheHits++;
        return stack.Pop();
    }

    nint TryReserve(long rounded)
    {
        if (_limit is { } limit && _reserved + rounded > limit) return 0;
        nint ptr = _raw.Allocate(rounded);
        if (ptr == 0) return 0;
        _reserved += rounded;
        if (_reserved > _peakReserved) _peakReserved = _reserved;
        return ptr;
    }

    void ReleaseCacheLocked()
    {
        foreach (var (size, stack) in _cache)
            while (stack.Count > 0)
            {
                _raw.Free(stack.Pop());
                _reserved -= size;
                _cached -= size;
            }
    }

    DeviceOutOfMemoryException OutOfMemory(long bytes, long rounded, MemoryCategory category, string? label)
    {
        // The request reserved nothing (the cache was released before the retry): the pool is as before the call.
        long shortBytes = _limit is { } lim && _reserved + rounded > lim ? _reserved + rounded - lim : rounded;
        var largest = SnapshotLocked().Take(5).ToList();
        var sb = new StringBuilder();
        sb.Append($"{Name} out of memory: tried to allocate {FormatBytes(bytes)} of {category} for '{label ?? OpLabel.Current}'");
        sb.Append(_limit is { } l ? $" with a limit of {FormatBytes(l)}" : "");
        sb.Append($"; reserved {FormatBytes(_reserved)}, in use {FormatBytes(_inUseTotal)}:");
        foreach (var c in Enum.GetValues<MemoryCategory>())
            sb.Append($" {c} {FormatBytes(_inUse[(int)c])};");
        sb.Append(" largest live blocks:");
        if (largest.Count == 0) sb.Append(" none;");
        foreach (var b in largest)
            sb.Append($" #{b.Id} {FormatBytes(b.Bytes)} {b.Category} ({b.Label});");
        var suggestions = Suggestions(shortBytes);
        sb.Append($" Short by {FormatBytes(shortBytes)}. To fit:");
        for (int i = 0; i < suggestions.Count; i++) sb.Append($" ({i + 1}) {suggestions[i]}");
        return new DeviceOutOfMemoryException(sb.ToString(), bytes, category, StatsUnlocked(), largest, shortBytes, suggestions);
    }

    /// <summary>What to try, ordered by who holds the memory now (activations first when they dominate).</summary>
    List<string> Suggestions(long shortBytes)
    {
        long saved = _inUse[(int)MemoryCategory.SavedActivation], temp = _inUse[(int)MemoryCategory.Temporary];
        long activations = saved + temp;
        string share = _inUseTotal > 0 ? $" ({100.0 * activations / _inUseTotal:0}% of the bytes in use)" : "";
        var list = new List<string>
        {
            $"lower the SBP keep ratio (KeepMaskPolicy): saved activations {FormatBytes(saved)} and temporaries {FormatBytes(temp)}{share} shrink about in proportion to the kept positions;",
            "enable recompute or checkpointing for the largest regions (RegionOptions Mode = Recompute or Checkpoint): backward re-runs them instead of keeping their activations;",
            "use a smaller batch, or split it into micro-batches with gradient accumulation (activation memory scales with the batch, parameters and optimizer state do not);",
            _limit is { } l ? $"raise MemoryPool.LimitBytes above {FormatBytes(l + shortBytes)} if the device has room." : "free tensors held outside the step (dispose them or open a TensorScope), or use a device with more memory.",
        };
        if (activations < _inUse[(int)MemoryCategory.Parameter] + _inUse[(int)MemoryCategory.OptimizerState])
            list.Insert(0, $"parameters and optimizer state hold most of the memory ({FormatBytes(_inUse[(int)MemoryCategory.Parameter] + _inUse[(int)MemoryCategory.OptimizerState])}): use a smaller model (activation savings cannot cover it);");
        return list;
    }

    MemoryStats StatsUnlocked()
    {
        var inUse = Enum.GetValues<MemoryCategory>().ToDictionary(c => c, c => _inUse[(int)c]);
        var peak = Enum.GetValues<MemoryCategory>().ToDictionary(c => c, c => _peak[(int)c]);
        return new MemoryStats(_inUseTotal, _peakTotal, _reserved, _peakReserved, _cached, _live.Count,
            _allocations, _frees, _cacheHits, inUse, peak, _limit);
    }

    public static string FormatBytes(long bytes)
    {
        double b = bytes;
        string[] units = ["B", "KiB", "MiB", "GiB", "TiB"];
        int u = 0;
        while (Math.Abs(b) >= 1024 && u < units.Length - 1) { b /= 1024; u++; }
        return u == 0 ? $"{bytes} B" : $"{b:0.00} {units[u]} ({bytes} B)";
    }
}
