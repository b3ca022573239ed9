namespace Sbp.Memory;

/// <summary>
/// A pool could not satisfy a request within its limit (or the device had no memory left). The
/// message says what was asked, what is in use per category, the largest live blocks and what to try.
/// </summary>
public sealed class DeviceOutOfMemoryException : Exception
{
    public DeviceOutOfMemoryException(string message, long requestedBytes, MemoryCategory category,
        MemoryStats stats, IReadOnlyList<BlockInfo> largestBlocks) : base(message)
    {
        RequestedBytes = requestedBytes;
        Category = category;
        Stats = stats;
        LargestBlocks = largestBlocks;
    }

    public long RequestedBytes { get; }
    public MemoryCategory Category { get; }
    public MemoryStats Stats { get; }
    public IReadOnlyList<BlockInfo> LargestBlocks { get; }
}
