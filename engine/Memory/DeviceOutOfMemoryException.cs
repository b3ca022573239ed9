namespace Sbp.Memory;

/// <summary>
/// A pool could not satisfy a request within its limit (or the device had no memory left). The
/// message says what was asked, what is in use per category, the largest live blocks and what to
/// try (with numbers). The failed request left nothing allocated: free tensors and retry (a trainer
/// can retry the step as micro-batches; <see cref="ShortBytes"/> says how much was missing).
/// </summary>
public sealed class DeviceOutOfMemoryException : Exception
{
    public DeviceOutOfMemoryException(string message, long requestedBytes, MemoryCategory category,
        MemoryStats stats, IReadOnlyList<BlockInfo> largestBlocks, long shortBytes = 0,
        IReadOnlyList<string>? suggestions = null) : base(message)
    {
        RequestedBytes = requestedBytes;
        Category = category;
        Stats = stats;
        LargestBlocks = largestBlocks;
        ShortBytes = shortBytes;
        Suggestions = suggestions ?? [];
    }

    public long RequestedBytes { get; }
    public MemoryCategory Category { get; }
    public MemoryStats Stats { get; }
    public IReadOnlyList<BlockInfo> LargestBlocks { get; }

    /// <summary>
    /// Bytes missing for this request: reserved + the rounded request - the limit (with a limit),
    /// else the rounded request (the device allocator refused it). Freeing at least this much lets
    /// the same request succeed.
    /// </summary>
    public long ShortBytes { get; }

    /// <summary>What to try, most promising first, one sentence each (also in the message).</summary>
    public IReadOnlyList<string> Suggestions { get; }
}
