using System.Buffers.Binary;
using System.Text;

namespace Sbp.Models.Pretrained;

/// <summary>
/// The central directory of a zip archive (with zip64), read without inflating anything: the entries' names,
/// compression methods, sizes and where their data starts. PyTorch writes every record STORED (inline_container.cc),
/// so <see cref="Read"/> refuses compressed or encrypted records instead of inflating them (a zip bomb cannot expand).
/// </summary>
public sealed class ZipDirectory
{
    public sealed record Entry(string Name, int Method, long CompressedSize, long Size, long DataOffset);

    readonly Dictionary<string, Entry> _entries = new(StringComparer.Ordinal);
    readonly Stream _stream;
    readonly string _file;

    ZipDirectory(Stream stream, string file)
    {
        _stream = stream;
        _file = file;
    }

    public IReadOnlyCollection<Entry> Entries => _entries.Values;

    public Entry? Find(string name) => _entries.GetValueOrDefault(name);

    /// <summary>Parses the directory of <paramref name="stream"/> (seekable), checking every entry lies inside the file.</summary>
    public static ZipDirectory Open(Stream stream, string file, PthLimits limits)
    {
        var zip = new ZipDirectory(stream, file);
        long length = stream.Length;
        int tail = (int)Math.Min(length, 22 + 65535);
        var end = zip.Bytes(length - tail, tail);
        int eocd = -1;
        for (int i = tail - 22; i >= 0; i--)
            if (BinaryPrimitives.ReadUInt32LittleEndian(end.AsSpan(i)) == 0x06054b50) { eocd = i; break; }
        if (eocd < 0) throw zip.Fail("no end-of-central-directory record: the zip is truncated or not a zip");
        long entries = BinaryPrimitives.ReadUInt16LittleEndian(end.AsSpan(eocd + 10));
        long size = BinaryPrimitives.ReadUInt32LittleEndian(end.AsSpan(eocd + 12));
        long offset = BinaryPrimitives.ReadUInt32LittleEndian(end.AsSpan(eocd + 16));
        long eocdAt = length - tail + eocd;
        if ((entries == 0xFFFF || size == 0xFFFFFFFF || offset == 0xFFFFFFFF) && eocdAt >= 20)
        {
            var locator = zip.Bytes(eocdAt - 20, 20);
            if (BinaryPrimitives.ReadUInt32LittleEndian(locator) == 0x07064b50)
            {
                long at = BinaryPrimitives.ReadInt64LittleEndian(locator.AsSpan(8));
                var z64 = zip.Bytes(at, 56);
                if (BinaryPrimitives.ReadUInt32LittleEndian(z64) != 0x06064b50) throw zip.Fail("a zip64 locator points at no zip64 directory record");
                entries = BinaryPrimitives.ReadInt64LittleEndian(z64.AsSpan(32));
                size = BinaryPrimitives.ReadInt64LittleEndian(z64.AsSpan(40));
                offset = BinaryPrimitives.ReadInt64LittleEndian(z64.AsSpan(48));
            }
        }
        if (entries > limits.MaxZipEntries) throw zip.Fail($"{entries} zip entries, more than {limits.MaxZipEntries} (PthLimits.MaxZipEntries)");
        if (offset < 0 || size < 0 || offset + size > length) throw zip.Fail($"the central directory ({size} bytes at {offset}) lies outside the {length}-byte file (truncated?)");
        var dir = zip.Bytes(offset, (int)Math.Min(size, int.MaxValue));
        int p = 0;
        for (long e = 0; e < entries; e++) p = zip.ReadEntry(dir, p, length);
        return zip;
    }

    int ReadEntry(byte[] dir, int p, long length)
    {
        if (p + 46 > dir.Length || BinaryPrimitives.ReadUInt32LittleEndian(dir.AsSpan(p)) != 0x02014b50) throw Fail("a malformed central directory entry");
        int flags = BinaryPrimitives.ReadUInt16LittleEndian(dir.AsSpan(p + 8)), method = BinaryPrimitives.ReadUInt16LittleEndian(dir.AsSpan(p + 10));
        long compressed = BinaryPrimitives.ReadUInt32LittleEndian(dir.AsSpan(p + 20)), size = BinaryPrimitives.ReadUInt32LittleEndian(dir.AsSpan(p + 24));
        int nameLen = BinaryPrimitives.ReadUInt16LittleEndian(dir.AsSpan(p + 28)), extraLen = BinaryPrimitives.ReadUInt16LittleEndian(dir.AsSpan(p + 30));
        int commentLen = BinaryPrimitives.ReadUInt16LittleEndian(dir.AsSpan(p + 32));
        long local = BinaryPrimitives.ReadUInt32LittleEndian(dir.AsSpan(p + 42));
        if (p + 46 + nameLen + extraLen + commentLen > dir.Length) throw Fail("a central directory entry runs past the directory");
        string name = Encoding.UTF8.GetString(dir, p + 46, nameLen);
        // zip64 extra field: the 0xFFFFFFFF fields, in the order size, compressed size, local header offset.
        for (int x = p + 46 + nameLen; x + 4 <= p + 46 + nameLen + extraLen;)
        {
            int id = BinaryPrimitives.ReadUInt16LittleEndian(dir.AsSpan(x)), len = BinaryPrimitives.ReadUInt16LittleEndian(dir.AsSpan(x + 2));
            if (id == 1)
            {
                int f = x + 4;
                if (size == 0xFFFFFFFF && f + 8 <= x + 4 + len) { size = BinaryPrimitives.ReadInt64LittleEndian(dir.AsSpan(f)); f += 8; }
                if (compressed == 0xFFFFFFFF && f + 8 <= x + 4 + len) { compressed = BinaryPrimitives.ReadInt64LittleEndian(dir.AsSpan(f)); f += 8; }
                if (local == 0xFFFFFFFF && f + 8 <= x + 4 + len) local = BinaryPrimitives.ReadInt64LittleEndian(dir.AsSpan(f));
            }
            x += 4 + len;
        }
        if ((flags & 1) != 0) throw Fail($"entry '{name}' is encrypted");
        if (local < 0 || local + 30 > length) throw Fail($"entry '{name}' has its header outside the file");
        var header = Bytes(local, 30);
        if (BinaryPrimitives.ReadUInt32LittleEndian(header) != 0x04034b50) throw Fail($"entry '{name}' points at no local header");
        long data = local + 30 + BinaryPrimitives.ReadUInt16LittleEndian(header.AsSpan(26)) + BinaryPrimitives.ReadUInt16LittleEndian(header.AsSpan(28));
        if (compressed < 0 || size < 0 || data + compressed > length) throw Fail($"entry '{name}' ({compressed} bytes at {data}) runs past the end of the {length}-byte file (truncated?)");
        _entries[name] = new Entry(name, method, compressed, size, data);
        return p + 46 + nameLen + extraLen + commentLen;
    }

    /// <summary>The bytes of a STORED entry; compressed entries are refused, not inflated.</summary>
    public byte[] Read(Entry entry, long maxBytes)
    {
        if (entry.Method != 0 || entry.CompressedSize != entry.Size)
            throw Fail($"entry '{entry.Name}' is compressed (method {entry.Method}, {entry.CompressedSize} bytes for {entry.Size}); PyTorch stores every record uncompressed, and the reader does not inflate (a zip bomb's shape)");
        if (entry.Size > Math.Min(maxBytes, Array.MaxLength)) throw Fail($"entry '{entry.Name}' has {entry.Size} bytes, more than the limit of {Math.Min(maxBytes, Array.MaxLength)}");
        return Bytes(entry.DataOffset, (int)entry.Size);
    }

    byte[] Bytes(long at, int count)
    {
        if (at < 0 || at + count > _stream.Length) throw Fail($"{count} bytes at {at} lie outside the file");
        var buffer = new byte[count];
        _stream.Position = at;
        _stream.ReadExactly(buffer);
        return buffer;
    }

    PthFormatException Fail(string what) => new($"{_file}: {what}.");
}
