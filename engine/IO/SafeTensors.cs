using System.Buffers;
using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Sbp.Tensors;

namespace Sbp.IO;

/// <summary>
/// Writer and reader of the safetensors format (https://github.com/huggingface/safetensors):
/// 8 bytes little-endian unsigned header length N; N bytes of UTF-8 JSON, an object mapping each
/// tensor name to {"dtype": "F32" | "I32", "shape": [...], "data_offsets": [begin, end]} (byte
/// offsets relative to the data section) plus an optional "__metadata__" object of string values;
/// then the raw little-endian data. We write the header padded with spaces so that 8 + N is a
/// multiple of 8, tensors sorted by name (ordinal) with contiguous offsets from 0 that cover the
/// data section exactly, and (on seekable streams) a SHA-256 in metadata key <see cref="ChecksumKey"/>
/// over the whole file with that value's 64 characters read as '0' (so any flipped bit, in the
/// header or the data, is detected); the reader verifies it when present (other readers ignore it).
/// The reader validates everything and throws <see cref="InvalidDataException"/> naming the file
/// and the problem; it never returns partial or garbage tensors.
/// </summary>
public static class SafeTensors
{
    /// <summary>
    /// Metadata key holding the lowercase hex SHA-256 of the whole file (length, header, data) computed
    /// with this value itself replaced by 64 '0' characters.
    /// </summary>
    public const string ChecksumKey = "sbp.sha256";

    /// <summary>Headers larger than this are rejected (100 MB, as the reference implementation).</summary>
    public const long MaxHeaderBytes = 100_000_000;

    const string MetadataKey = "__metadata__";
    static readonly string ChecksumPlaceholder = new('0', 64);

    // ---- writing ------------------------------------------------------------------------------

    /// <summary>
    /// Writes a safetensors file atomically: to a temporary file in the same folder, flushed to
    /// disk, then renamed over the target path. If anything fails (a tensor source throws,
    /// the disk is full) the temporary file is deleted and an existing file at path is untouched.
    /// </summary>
    static int _saves;

    /// <summary>
    /// Fault injection for crash-safety tests: with SBP_FAULT_CRASH_IN_SAVE=N the process dies on its
    /// N-th save, half-way through writing the temporary file (as a kill at that moment would).
    /// </summary>
    static void CrashHereForTests(FileStream fs)
    {
        var n = Environment.GetEnvironmentVariable("SBP_FAULT_CRASH_IN_SAVE");
        if (n is null || !int.TryParse(n, System.Globalization.CultureInfo.InvariantCulture, out int at) || Interlocked.Increment(ref _saves) != at) return;
        fs.SetLength(fs.Length / 2);
        fs.Flush(flushToDisk: true);
        Environment.FailFast($"SBP_FAULT_CRASH_IN_SAVE={at}: simulated crash while writing {fs.Name}");
    }

    public static void Save(string path, IEnumerable<SafeTensorsEntry> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full) ?? ".";
        Directory.CreateDirectory(dir);
        var tmp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 20))
            {
                Write(fs, tensors, metadata);
                CrashHereForTests(fs);
                fs.Flush(flushToDisk: true);
            }
            File.Move(tmp, full, overwrite: true);
        }
        catch
        {
            try { File.Delete(tmp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw;
        }
    }

    /// <summary>Saves named tensors (copied from their devices) atomically, as <see cref="Save(string, IEnumerable{SafeTensorsEntry}, IReadOnlyDictionary{string, string}?)"/>.</summary>
    public static void Save(string path, IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null) =>
        Save(path, tensors.Select(kv => SafeTensorsEntry.FromTensor(kv.Key, kv.Value)), metadata);

    /// <summary>
    /// Writes the file to <paramref name="stream"/> starting at its current position. When the
    /// stream can seek, the data checksum is patched into the header afterwards.
    /// </summary>
    public static void Write(Stream stream, IEnumerable<SafeTensorsEntry> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("SafeTensors: big-endian hosts are not supported.");
        var list = tensors.ToList();
        list.Sort((a, b) => string.CompareOrdinal(a.Name, b.Name));
        for (int i = 0; i < list.Count; i++)
        {
            var e = list[i];
            if (string.IsNullOrEmpty(e.Name)) throw new ArgumentException("SafeTensors.Write: a tensor has an empty name.");
            if (e.Name == MetadataKey) throw new ArgumentException($"SafeTensors.Write: '{MetadataKey}' is reserved and cannot name a tensor.");
            if (i > 0 && list[i - 1].Name == e.Name) throw new ArgumentException($"SafeTensors.Write: tensor name '{e.Name}' appears twice.");
        }
        bool checksum = stream.CanSeek;
        long start = checksum ? stream.Position : 0;

        // Header JSON.
        var json = new ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(json, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            var meta = new SortedDictionary<string, string>(StringComparer.Ordinal);
            if (metadata is not null) foreach (var (k, v) in metadata) meta[k] = v;
            if (checksum) meta[ChecksumKey] = ChecksumPlaceholder;
            else meta.Remove(ChecksumKey);
            if (meta.Count > 0)
            {
                w.WriteStartObject(MetadataKey);
                foreach (var (k, v) in meta) w.WriteString(k, v);
                w.WriteEndObject();
            }
            long offset = 0;
            foreach (var e in list)
            {
                w.WriteStartObject(e.Name);
                w.WriteString("dtype", DTypeName(e.DType));
                w.WriteStartArray("shape");
                foreach (int d in e.Shape.Dims) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(offset);
                w.WriteNumberValue(offset + e.Bytes);
                w.WriteEndArray();
                w.WriteEndObject();
                offset += e.Bytes;
            }
            w.WriteEndObject();
        }
        int jsonLength = json.WrittenCount;
        int headerLength = (jsonLength + 7) / 8 * 8;   // 8 + N is a multiple of 8
        var header = new byte[8 + headerLength];
        BinaryPrimitives.WriteUInt64LittleEndian(header, (ulong)headerLength);
        json.WrittenSpan.CopyTo(header.AsSpan(8));
        header.AsSpan(8 + jsonLength).Fill((byte)' ');
        int checksumAt = -1;
        if (checksum)
        {
            var marker = Encoding.UTF8.GetBytes($"\"{ChecksumKey}\":\"{ChecksumPlaceholder}\"");
            int at = header.AsSpan().IndexOf(marker);
            if (at < 0) throw new InvalidOperationException("SafeTensors.Write: internal error, checksum placeholder not found in the header.");
            checksumAt = at + marker.Length - 1 - ChecksumPlaceholder.Length;
        }
        stream.Write(header);

        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        sha.AppendData(header);
        foreach (var e in list)
        {
            long bytes = e.Bytes;
            if (bytes > Array.MaxLength) throw new NotSupportedException($"SafeTensors.Write: tensor '{e.Name}' has {bytes} bytes; tensors over {Array.MaxLength} bytes are not supported.");
            var buffer = ArrayPool<byte>.Shared.Rent((int)Math.Max(bytes, 1));
            try
            {
                var span = buffer.AsSpan(0, (int)bytes);
                span.Clear();
                e.Fill(span);
                stream.Write(span);
                if (checksum) sha.AppendData(span);
            }
            finally { ArrayPool<byte>.Shared.Return(buffer); }
        }
        if (checksum)
        {
            long end = stream.Position;
            var hex = Encoding.ASCII.GetBytes(Convert.ToHexStringLower(sha.GetHashAndReset()));
            stream.Position = start + checksumAt;
            stream.Write(hex);
            stream.Position = end;
        }
    }

    static string DTypeName(DType dtype) => dtype switch
    {
        DType.Float32 => "F32",
        DType.Int32 => "I32",
        DType.BFloat16 => "BF16",
        DType.Float16 => "F16",
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "SafeTensors: unsupported dtype."),
    };

    // ---- reading ------------------------------------------------------------------------------

    /// <summary>
    /// Reads and validates a whole safetensors file (header and data) into host memory. With
    /// <paramref name="requireChecksum"/>, a file without our checksum is rejected too (so that no
    /// single corrupted bit, even one in the checksum's key, goes unnoticed in files we wrote).
    /// </summary>
    public static SafeTensorsFile Load(string path, bool requireChecksum = false)
    {
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
        return Read(fs, path, requireChecksum);
    }

    /// <summary>Reads and validates a safetensors file from the current position to the end of <paramref name="stream"/>.</summary>
    public static SafeTensorsFile Read(Stream stream, string name = "<stream>", bool requireChecksum = false)
    {
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("SafeTensors: big-endian hosts are not supported.");
        long available = stream.CanSeek ? stream.Length - stream.Position : -1;
        Span<byte> lenBytes = stackalloc byte[8];
        if (ReadFully(stream, lenBytes) < 8)
            throw Bad(name, "the file is shorter than the 8-byte header length (truncated or not a safetensors file)");
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(lenBytes);
        if (n > MaxHeaderBytes)
            throw Bad(name, $"the header length field says {n} bytes, more than the {MaxHeaderBytes}-byte limit (corrupted length or not a safetensors file)");
        if (available >= 0 && (long)n > available - 8)
            throw Bad(name, $"the header length field says {n} bytes but only {available - 8} bytes follow it (truncated file or corrupted length)");
        var headerBytes = new byte[n];
        if (ReadFully(stream, headerBytes) < headerBytes.Length)
            throw Bad(name, $"the file ends inside the {n}-byte header (truncated)");

        var (metadata, infos) = ParseHeader(name, headerBytes);
        long dataLength = infos.Count == 0 ? 0 : infos.Max(i => i.End);
        if (available >= 0 && available - 8 - (long)n != dataLength)
            throw Bad(name, available - 8 - (long)n < dataLength
                ? $"the data section has {available - 8 - (long)n} bytes but the header describes {dataLength} (truncated file)"
                : $"the data section has {available - 8 - (long)n} bytes but the header describes {dataLength} (trailing bytes: corrupted header or file)");

        // Data, in offset order (contiguous, validated). The checksum covers length, header (its own value zeroed) and data.
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        metadata.TryGetValue(ChecksumKey, out var expected);
        if (expected is null && requireChecksum)
            throw Bad(name, $"the header has no '{ChecksumKey}' checksum in its metadata (corrupted header, or not written by this engine)");
        if (expected is not null)
        {
            var valueBytes = Encoding.UTF8.GetBytes($"\"{expected}\"");
            int at = headerBytes.AsSpan().IndexOf(valueBytes);
            if (expected.Length != 64 || at < 0)
                throw Bad(name, $"the header's '{ChecksumKey}' value is malformed (corrupted header)");
            var zeroed = (byte[])headerBytes.Clone();
            zeroed.AsSpan(at + 1, 64).Fill((byte)'0');
            sha.AppendData(lenBytes);
            sha.AppendData(zeroed);
        }
        var data = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        foreach (var info in infos.OrderBy(i => i.Begin).ThenBy(i => i.End))
        {
            if (info.Bytes > Array.MaxLength) throw Bad(name, $"tensor '{info.Name}' has {info.Bytes} bytes, more than this reader supports");
            var buf = new byte[info.Bytes];
            if (ReadFully(stream, buf) < buf.Length)
                throw Bad(name, $"the file ends inside the data of tensor '{info.Name}' (truncated)");
            sha.AppendData(buf);
            data[info.Name] = buf;
        }
        if (!stream.CanSeek)
        {
            Span<byte> one = stackalloc byte[1];
            if (stream.Read(one) != 0) throw Bad(name, $"bytes follow the {dataLength}-byte data section the header describes (corrupted header or file)");
        }
        if (expected is not null)
        {
            var actual = Convert.ToHexStringLower(sha.GetHashAndReset());
            if (!string.Equals(expected, actual, StringComparison.Ordinal))
                throw Bad(name, $"the file's SHA-256 is {actual} but the header's '{ChecksumKey}' says {expected} (corrupted header or data)");
        }
        return new SafeTensorsFile(name, metadata, infos, data);
    }

    /// <summary>Reads and validates only the header (names, dtypes, shapes, offsets, metadata).</summary>
    public static (IReadOnlyDictionary<string, string> Metadata, IReadOnlyList<SafeTensorsInfo> Tensors) ReadHeader(string path)
    {
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        Span<byte> lenBytes = stackalloc byte[8];
        if (ReadFully(fs, lenBytes) < 8) throw Bad(path, "the file is shorter than the 8-byte header length (truncated or not a safetensors file)");
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(lenBytes);
        if (n > MaxHeaderBytes) throw Bad(path, $"the header length field says {n} bytes, more than the {MaxHeaderBytes}-byte limit (corrupted length or not a safetensors file)");
        if ((long)n > fs.Length - 8) throw Bad(path, $"the header length field says {n} bytes but only {fs.Length - 8} bytes follow it (truncated file or corrupted length)");
        var headerBytes = new byte[n];
        ReadFully(fs, headerBytes);
        var (meta, infos) = ParseHeader(path, headerBytes);
        long dataLength = infos.Count == 0 ? 0 : infos.Max(i => i.End);
        if (fs.Length - 8 - (long)n != dataLength)
            throw Bad(path, $"the data section has {fs.Length - 8 - (long)n} bytes but the header describes {dataLength} (truncated or corrupted file)");
        return (meta, infos);
    }

    static (Dictionary<string, string>, List<SafeTensorsInfo>) ParseHeader(string file, byte[] headerBytes)
    {
        if (headerBytes.Length == 0 || headerBytes[0] != (byte)'{')
            throw Bad(file, "the header does not start with '{' (corrupted header or not a safetensors file)");
        if (!System.Text.Unicode.Utf8.IsValid(headerBytes))
            throw Bad(file, "the header is not valid UTF-8 (corrupted header)");
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(headerBytes.AsMemory().TrimEnd((byte)' '), new JsonDocumentOptions { MaxDepth = 8 });
        }
        catch (JsonException ex)
        {
            throw Bad(file, $"the header is not valid JSON ({ex.Message})", ex);
        }
        catch (ArgumentException ex)   // invalid UTF-8 surfaces as ArgumentException in some paths
        {
            throw Bad(file, $"the header is not valid UTF-8 JSON ({ex.Message})", ex);
        }
        using (doc)
        {
            try { return ParseRoot(file, doc.RootElement); }
            catch (InvalidOperationException ex)   // a JSON string with a lone surrogate escape ("\ud800") cannot be read as text
            {
                throw Bad(file, $"the header holds an invalid JSON string ({ex.Message})", ex);
            }
        }
    }

    static (Dictionary<string, string>, List<SafeTensorsInfo>) ParseRoot(string file, JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object) throw Bad(file, "the header is not a JSON object");
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        var infos = new List<SafeTensorsInfo>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var prop in root.EnumerateObject())
        {
            if (!names.Add(prop.Name)) throw Bad(file, $"the header names '{prop.Name}' twice");
            if (prop.Name == MetadataKey)
            {
                if (prop.Value.ValueKind != JsonValueKind.Object) throw Bad(file, $"'{MetadataKey}' is not an object of strings");
                foreach (var m in prop.Value.EnumerateObject())
                {
                    if (m.Value.ValueKind != JsonValueKind.String) throw Bad(file, $"metadata '{m.Name}' is not a string");
                    if (!metadata.TryAdd(m.Name, m.Value.GetString()!)) throw Bad(file, $"metadata '{m.Name}' appears twice");
                }
                continue;
            }
            infos.Add(ParseTensor(file, prop.Name, prop.Value));
        }
        // Offsets: sorted by begin they must tile [0, total) exactly.
        long expected = 0;
        foreach (var info in infos.OrderBy(i => i.Begin).ThenBy(i => i.End))
        {
            if (info.Begin != expected)
                throw Bad(file, info.Begin < expected
                    ? $"tensor '{info.Name}' data_offsets [{info.Begin}, {info.End}] overlap the previous tensor (which ends at {expected})"
                    : $"tensor '{info.Name}' data_offsets [{info.Begin}, {info.End}] leave a gap after byte {expected}");
            expected = info.End;
        }
        return (metadata, infos);
    }

    static SafeTensorsInfo ParseTensor(string file, string name, JsonElement e)
    {
        if (e.ValueKind != JsonValueKind.Object) throw Bad(file, $"tensor '{name}' is not a JSON object");
        if (!e.TryGetProperty("dtype", out var dt) || dt.ValueKind != JsonValueKind.String)
            throw Bad(file, $"tensor '{name}' has no string 'dtype'");
        var dtypeName = dt.GetString()!;
        DType dtype = dtypeName switch
        {
            "F32" => DType.Float32,
            "I32" => DType.Int32,
            "BF16" => DType.BFloat16,
            "F16" => DType.Float16,
            _ => throw Bad(file, $"tensor '{name}' has dtype '{dtypeName}'; this engine reads F32, BF16, F16 and I32"),
        };
        if (!e.TryGetProperty("shape", out var sh) || sh.ValueKind != JsonValueKind.Array)
            throw Bad(file, $"tensor '{name}' has no 'shape' array");
        var dims = new List<int>();
        long numel = 1;
        foreach (var d in sh.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt32(out int v) || v < 0)
                throw Bad(file, $"tensor '{name}' has shape {sh.GetRawText()}; dimensions must be integers in [0, {int.MaxValue}]");
            dims.Add(v);
            try { numel = checked(numel * v); }
            catch (OverflowException) { throw Bad(file, $"tensor '{name}' has shape {sh.GetRawText()} whose element count overflows"); }
        }
        if (dims.Count > 16) throw Bad(file, $"tensor '{name}' has rank {dims.Count}; at most 16 is supported");
        if (!e.TryGetProperty("data_offsets", out var off) || off.ValueKind != JsonValueKind.Array || off.GetArrayLength() != 2)
            throw Bad(file, $"tensor '{name}' has no 'data_offsets' array of two numbers");
        if (off[0].ValueKind != JsonValueKind.Number || off[1].ValueKind != JsonValueKind.Number ||   // TryGetInt64 throws on non-numbers
            !off[0].TryGetInt64(out long begin) || !off[1].TryGetInt64(out long end) || begin < 0 || end < begin)
            throw Bad(file, $"tensor '{name}' has data_offsets {off.GetRawText()}; they must be integers with 0 <= begin <= end");
        long bytes;
        try { bytes = checked(numel * dtype.Size()); }
        catch (OverflowException) { throw Bad(file, $"tensor '{name}' is too large"); }
        if (end - begin != bytes)
            throw Bad(file, $"tensor '{name}' is {dtypeName} {sh.GetRawText()} = {bytes} bytes, but its data_offsets [{begin}, {end}] span {end - begin} bytes");
        foreach (var p in e.EnumerateObject())
            if (p.Name is not ("dtype" or "shape" or "data_offsets"))
                throw Bad(file, $"tensor '{name}' has an unknown field '{p.Name}'");
        return new SafeTensorsInfo(name, dtype, new Shape([.. dims]), begin, end);
    }

    static int ReadFully(Stream s, Span<byte> buffer)
    {
        int total = 0;
        while (total < buffer.Length)
        {
            int r = s.Read(buffer[total..]);
            if (r == 0) break;
            total += r;
        }
        return total;
    }

    internal static InvalidDataException Bad(string file, string problem, Exception? inner = null) =>
        new($"safetensors file '{file}': {problem}.", inner);
}
