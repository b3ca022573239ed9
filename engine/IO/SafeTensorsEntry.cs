using System.Runtime.InteropServices;
using Sbp.Tensors;

namespace Sbp.IO;

/// <summary>
/// One tensor to write: its name, dtype, shape and a callback that fills exactly
/// numel * dtype size bytes of little-endian data (called once, while writing).
/// </summary>
public sealed record SafeTensorsEntry(string Name, DType DType, Shape Shape, Action<Span<byte>> Fill)
{
    public long Bytes => Shape.Numel * DType.Size();

    /// <summary>An entry that copies <paramref name="tensor"/> from its device when written.</summary>
    public static SafeTensorsEntry FromTensor(string name, Tensor tensor) =>
        new(name, tensor.DType, tensor.Shape, dst => tensor.Backend.CopyToHost(tensor, dst));

    public static SafeTensorsEntry FromArray(string name, float[] data, Shape shape)
    {
        if (data.Length != shape.Numel) throw new ShapeMismatchException($"SafeTensorsEntry '{name}': {data.Length} values do not fill shape {shape}.");
        return new(name, DType.Float32, shape, dst => MemoryMarshal.AsBytes(data.AsSpan()).CopyTo(dst));
    }

    public static SafeTensorsEntry FromArray(string name, int[] data, Shape shape)
    {
        if (data.Length != shape.Numel) throw new ShapeMismatchException($"SafeTensorsEntry '{name}': {data.Length} values do not fill shape {shape}.");
        return new(name, DType.Int32, shape, dst => MemoryMarshal.AsBytes(data.AsSpan()).CopyTo(dst));
    }
}

/// <summary>Where one tensor of a safetensors file lies: dtype, shape and [Begin, End) in the data section.</summary>
public sealed record SafeTensorsInfo(string Name, DType DType, Shape Shape, long Begin, long End)
{
    public long Bytes => End - Begin;
}
