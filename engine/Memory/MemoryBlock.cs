namespace Sbp.Memory;

/// <summary>
/// One live allocation from a <see cref="MemoryPool"/>. Reference counted: tensors and views that
/// share it each hold one reference, and so does an autograd tape that saved it. While a tape holds
/// a temporary block it counts as <see cref="MemoryCategory.SavedActivation"/>.
/// </summary>
public sealed class MemoryBlock
{
    internal MemoryBlock(MemoryPool pool, long id, nint pointer, long bytes, long blockBytes, MemoryCategory category, string label)
    {
        Pool = pool;
        Id = id;
        Pointer = pointer;
        Bytes = bytes;
        BlockBytes = blockBytes;
        BaseCategory = category;
        Label = label;
        RefCount = 1;
    }

    public MemoryPool Pool { get; }
    public long Id { get; }
    /// <summary>Start of the memory (host pointer on the CPU, device pointer on CUDA).</summary>
    internal nint Pointer { get; set; }
    /// <summary>Bytes requested: what the statistics count as in use.</summary>
    public long Bytes { get; }
    /// <summary>Bytes actually reserved for the block (rounded up by the pool).</summary>
    public long BlockBytes { get; }
    /// <summary>The op that allocated the block and its shape, for reports.</summary>
    public string Label { get; internal set; }
    public MemoryCategory BaseCategory { get; internal set; }
    public int RefCount { get; internal set; }
    /// <summary>How many autograd tapes hold this block for backward.</summary>
    public int SavedHolds { get; internal set; }
    public bool IsFreed => RefCount == 0;

    /// <summary>The category the block is counted under now.</summary>
    public MemoryCategory Category =>
        SavedHolds > 0 && BaseCategory == MemoryCategory.Temporary ? MemoryCategory.SavedActivation : BaseCategory;

    public override string ToString() => $"block #{Id} {MemoryPool.FormatBytes(Bytes)} {Category} ({Label})";
}
