using System.Runtime.InteropServices;
using Sbp.Memory;
using Sbp.Tensors;

namespace Sbp.IO;

/// <summary>A validated safetensors file read into host memory (see <see cref="SafeTensors.Load"/>).</summary>
public sealed class SafeTensorsFile
{
    readonly Dictionary<string, SafeTensorsInfo> _infos;
    readonly Dictionary<string, byte[]> _data;

    internal SafeTensorsFile(string path, IReadOnlyDictionary<string, string> metadata, IEnumerable<SafeTensorsInfo> tensors, Dictionary<string, byte[]> data)
    {
        Path = path;
        Metadata = metadata;
        _infos = tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
        _data = data;
    }

    public string Path { get; }
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>The tensors, sorted by name.</summary>
    public IReadOnlyList<SafeTensorsInfo> Tensors => _infos.Values.OrderBy(t => t.Name, StringComparer.Ordinal).ToList();

    public bool Contains(string name) => _infos.ContainsKey(name);

    public SafeTensorsInfo Info(string name) =>
        _infos.TryGetValue(name, out var i) ? i : throw new KeyNotFoundException($"safetensors file '{Path}' has no tensor '{name}'.");

    /// <summary>The raw little-endian bytes of a tensor.</summary>
    public ReadOnlySpan<byte> Data(string name)
    {
        Info(name);
        return _data[name];
    }

    /// <summary>A Float32, BFloat16 or Float16 tensor's values as floats (16-bit ones widened exactly).</summary>
    public float[] ToFloatArray(string name)
    {
        var info = Info(name);
        if (!info.DType.IsFloating()) throw new InvalidOperationException($"safetensors file '{Path}': tensor '{name}' is {info.DType}, not a float type (F32, BF16, F16).");
        if (info.DType == DType.Float32) return MemoryMarshal.Cast<byte, float>(_data[name]).ToArray();
        var values = new float[info.Shape.Numel];
        HalfPrecision.Widen(MemoryMarshal.Cast<byte, ushort>(_data[name]), values, info.DType);
        return values;
    }

    public int[] ToIntArray(string name)
    {
        var info = Info(name);
        if (info.DType != DType.Int32) throw new InvalidOperationException($"safetensors file '{Path}': tensor '{name}' is {info.DType}, not Int32.");
        return MemoryMarshal.Cast<byte, int>(_data[name]).ToArray();
    }

    /// <summary>A new tensor on <paramref name="device"/> holding the named tensor.</summary>
    public Tensor ToTensor(string name, Device? device = null, MemoryCategory category = MemoryCategory.Temporary)
    {
        var info = Info(name);
        var t = Tensor.Empty(info.Shape, device, info.DType, category);
        t.Backend.CopyFromHost(_data[name], t);
        return t;
    }

    /// <summary>
    /// Copies the named tensor into <paramref name="destination"/>: the same shape, and the same dtype or another float
    /// type (converted as <see cref="Ops.To"/> does: a BF16 or F16 file loads into Float32 parameters), or throws.
    /// </summary>
    public void CopyTo(string name, Tensor destination)
    {
        var info = Info(name);
        bool convertible = info.DType == destination.DType || (info.DType.IsFloating() && destination.DType.IsFloating());
        if (info.Shape != destination.Shape || !convertible)
            throw new ShapeMismatchException($"safetensors file '{Path}': tensor '{name}' is {info.DType} {info.Shape} but the destination is {destination.DType} {destination.Shape}.");
        if (info.DType == destination.DType)
        {
            destination.Backend.CopyFromHost(_data[name], destination);
            return;
        }
        var values = ToFloatArray(name);
        if (destination.DType == DType.Float32)
        {
            destination.Backend.CopyFromHost(MemoryMarshal.AsBytes(values.AsSpan()), destination);
            return;
        }
        var bits = new ushort[values.Length];
        HalfPrecision.Narrow(values, bits, destination.DType);
        destination.Backend.CopyFromHost(MemoryMarshal.AsBytes(bits.AsSpan()), destination);
    }
}
