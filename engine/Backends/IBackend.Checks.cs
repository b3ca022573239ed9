using Sbp.Tensors;

namespace Sbp.Backends;

/// <summary>
/// Builds the error for a value that failed a check: its flat position, the value (an Int32 index, or a Float32's bits
/// as an int) and a note that is empty on the CPU and, on a GPU, says the check ran on the device and was raised later.
/// </summary>
public delegate Exception CheckFailure(long position, int value, string note);

/// <summary>The failures the backends share.</summary>
public static class CheckFailures
{
    /// <summary>An index outside a dimension: <see cref="IndexOutOfRangeException"/> naming the op, the index, its position and the size.</summary>
    public static CheckFailure IndexOutOfRange(string op, int size) => (i, v, note) => new IndexOutOfRangeException(
        $"{op}: index {v} at position {i} is out of range for a dimension of size {size} (valid: 0..{size - 1}){note}.");
}

// Checks of a user's values (class targets, attention masks) that must not read device memory on the host: a read would
// wait for every queued kernel. The CPU checks at once; a GPU runs a kernel and raises at the host's next read.
public partial interface IBackend
{
    /// <summary>Every Int32 of <paramref name="indices"/> lies in 0..<paramref name="size"/>-1; else <paramref name="failure"/>'s
    /// exception for the first bad one is thrown (on a GPU: for one of them, at the host's next read of device memory).</summary>
    void CheckIndices(Tensor indices, int size, CheckFailure failure);

    /// <summary>Every Float32 of <paramref name="x"/> is greater than <paramref name="floor"/> (NaN fails), with the same
    /// reporting as <see cref="CheckIndices"/>; the value passed to <paramref name="failure"/> is the float's bits.</summary>
    void CheckAbove(Tensor x, float floor, CheckFailure failure);
}
