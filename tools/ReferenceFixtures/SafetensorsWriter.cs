using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace Sbp.Tools.ReferenceFixtures;

/// <summary>
/// Minimal safetensors writer: u64 little-endian header length, JSON header ({"__metadata__": {string: string},
/// name: {dtype, shape, data_offsets}}), then the raw little-endian data. Only F32 and I32 are written, because the
/// engine's reader accepts only those; float tensors are stored as F32 and integer tensors as I32.
/// </summary>
internal sealed class SafetensorsWriter
{
    readonly List<(string Name, string Dtype, long[] Shape, byte[] Data)> _tensors = [];
    readonly HashSet<string> _names = new(StringComparer.Ordinal);
    readonly Dictionary<string, string> _metadata = new(StringComparer.Ordinal);

    public void Metadata(string key, string value) => _metadata[key] = value;

    public void Add(string name, Tensor t)
    {
        if (name == "__metadata__" || !_names.Add(name)) throw new InvalidOperationException($"duplicate or reserved name '{name}'");
        var c = t.detach().cpu().contiguous();
        byte[] data;
        string dtype;
        if (c.is_floating_point())
        {
            dtype = "F32";
            data = MemoryMarshal.AsBytes(c.to_type(ScalarType.Float32).data<float>().ToArray().AsSpan()).ToArray();
        }
        else
        {
            var longs = c.to_type(ScalarType.Int64).data<long>().ToArray();
            if (longs.Any(v => v is < int.MinValue or > int.MaxValue)) throw new InvalidOperationException($"{name}: value out of I32 range");
            dtype = "I32";
            data = MemoryMarshal.AsBytes(longs.Select(v => (int)v).ToArray().AsSpan()).ToArray();
        }
        _tensors.Add((name, dtype, c.shape, data));
    }

    /// <summary>Writes the file; returns its size in bytes.</summary>
    public long Save(string path)
    {
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("safetensors data is little-endian");
        using var headerStream = new MemoryStream();
        using (var w = new Utf8JsonWriter(headerStream))
        {
            w.WriteStartObject();
            w.WriteStartObject("__metadata__");
            foreach (var (k, v) in _metadata) w.WriteString(k, v);
            w.WriteEndObject();
            long offset = 0;
            foreach (var (name, dtype, shape, data) in _tensors)
            {
                w.WriteStartObject(name);
                w.WriteString("dtype", dtype);
                w.WriteStartArray("shape");
                foreach (var s in shape) w.WriteNumberValue(s);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(offset);
                w.WriteNumberValue(offset + data.Length);
                w.WriteEndArray();
                w.WriteEndObject();
                offset += data.Length;
            }
            w.WriteEndObject();
        }
        // Pad the header with spaces to a multiple of 8 so the data starts aligned (as the reference writer does).
        var header = new List<byte>(headerStream.ToArray());
        while (header.Count % 8 != 0) header.Add((byte)' ');

        using var f = File.Create(path);
        Span<byte> len = stackalloc byte[8];
        BitConverter.TryWriteBytes(len, (ulong)header.Count);
        f.Write(len);
        f.Write(header.ToArray());
        foreach (var t in _tensors) f.Write(t.Data);
        return f.Length;
    }

    /// <summary>
    /// Reads a written file back as an independent reader would: header length, JSON, every entry's dtype, shape and
    /// offsets (contiguous, sized dtype * elements, ending at the file's end). Returns the number of tensors.
    /// </summary>
    public static int Verify(string path)
    {
        var bytes = File.ReadAllBytes(path);
        long n = (long)BitConverter.ToUInt64(bytes, 0);
        using var doc = JsonDocument.Parse(Encoding.UTF8.GetString(bytes, 8, (int)n));
        long expected = 0;
        int count = 0;
        foreach (var e in doc.RootElement.EnumerateObject())
        {
            if (e.Name == "__metadata__")
            {
                foreach (var m in e.Value.EnumerateObject())
                    if (m.Value.ValueKind != JsonValueKind.String) throw new InvalidDataException($"metadata {m.Name} is not a string");
                continue;
            }
            string dtype = e.Value.GetProperty("dtype").GetString()!;
            if (dtype is not ("F32" or "I32")) throw new InvalidDataException($"{e.Name}: dtype {dtype}");
            long elements = e.Value.GetProperty("shape").EnumerateArray().Aggregate(1L, (a, s) => a * s.GetInt64());
            var offsets = e.Value.GetProperty("data_offsets").EnumerateArray().Select(o => o.GetInt64()).ToArray();
            if (offsets[0] != expected || offsets[1] - offsets[0] != elements * 4)
                throw new InvalidDataException($"{e.Name}: offsets [{offsets[0]}, {offsets[1]}] for {elements} elements");
            expected = offsets[1];
            count++;
        }
        if (8 + n + expected != bytes.Length) throw new InvalidDataException($"{path}: data ends at {8 + n + expected}, file has {bytes.Length}");
        return count;
    }
}
