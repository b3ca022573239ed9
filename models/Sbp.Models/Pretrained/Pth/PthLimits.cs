namespace Sbp.Models.Pretrained;

/// <summary>
/// Caps a PyTorch checkpoint read stays within, checked before anything is allocated (a file cannot make the reader
/// allocate or loop beyond them): sizes of the file, of its pickle, of one string, of the unpickler's stack and
/// memo, the number of zip entries and of tensors, the bytes of one storage, and the float32 bytes the tensors
/// expand to (a stride-0 view of a small storage could otherwise ask for any size). A state dict's pickle keeps its
/// stack short (torch's pickler sets items in batches of 1000), so <see cref="MaxStack"/> also bounds nesting.
/// </summary>
public sealed record PthLimits(
    long MaxFileBytes = 64L << 30,
    long MaxPickleBytes = 256L << 20,
    int MaxZipEntries = 1_000_000,
    int MaxStack = 50_000,
    int MaxMemo = 10_000_000,
    long MaxStorageBytes = 16L << 30,
    int MaxTensors = 1_000_000,
    long MaxOutputBytes = 64L << 30)
{
    public static PthLimits Default { get; } = new();
}
