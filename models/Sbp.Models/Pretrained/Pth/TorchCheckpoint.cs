using System.Buffers.Binary;
using System.Numerics;

namespace Sbp.Models.Pretrained;

/// <summary>
/// A PyTorch checkpoint (<c>torch.save</c>: the zip format of torch 1.6+, or the legacy pickle-stream format) read
/// without executing anything (<see cref="Unpickler"/>): its state dict as float32 arrays by name. The state dict is
/// the top-level dict when it holds tensors, else the first of "state_dict", "model", "model_state_dict", "module"
/// that does (mmaction, timm, DeiT and DDP layouts); a "module." prefix on every key is removed. Non-tensor entries
/// of the state dict are listed in <see cref="Skipped"/>. Views (offsets, strides, shared storages) are copied into
/// contiguous arrays; float16, bfloat16, float64 and integer storages are converted to float32.
/// </summary>
public sealed class TorchCheckpoint
{
    static readonly string[] Wrappers = ["state_dict", "model", "model_state_dict", "module"];

    TorchCheckpoint(string path, string format, string location, Dictionary<string, HostArray> tensors, Dictionary<string, string> dtypes, List<string> skipped)
    {
        Path = path;
        Format = format;
        Location = location;
        Tensors = tensors;
        DTypes = dtypes;
        Skipped = skipped;
    }

    public string Path { get; }
    /// <summary>"zip" or "legacy".</summary>
    public string Format { get; }
    /// <summary>Where the state dict was: "" (top level) or the key that held it, e.g. "state_dict".</summary>
    public string Location { get; }
    public IReadOnlyDictionary<string, HostArray> Tensors { get; }
    /// <summary>The stored dtype of each tensor ("float32", "float16", "bfloat16", "int64", ...).</summary>
    public IReadOnlyDictionary<string, string> DTypes { get; }
    /// <summary>State-dict entries that are not tensors (e.g. "_metadata"), dropped.</summary>
    public IReadOnlyList<string> Skipped { get; }

    /// <summary>Reads <paramref name="path"/>; a file that is not a checkpoint, or not a safe one, throws <see cref="PthFormatException"/>.</summary>
    public static TorchCheckpoint Load(string path, PthLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        using var stream = File.OpenRead(path);
        return Read(stream, path, limits);
    }

    /// <summary>Reads a checkpoint from a seekable <paramref name="stream"/>; <paramref name="path"/> names it in messages.</summary>
    public static TorchCheckpoint Read(Stream stream, string path, PthLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        limits ??= PthLimits.Default;
        string name = System.IO.Path.GetFileName(path);
        try { return ReadChecked(stream, path, name, limits); }
        // Arithmetic the checks above did not foresee still ends as a refusal, never as another exception.
        catch (Exception e) when (e is EndOfStreamException or OverflowException)
        {
            throw new PthFormatException($"{name}: {(e is EndOfStreamException ? "the file ends inside a record (truncated?)" : "a size overflows 64 bits")}.");
        }
    }

    static TorchCheckpoint ReadChecked(Stream stream, string path, string name, PthLimits limits)
    {
        if (stream.Length > limits.MaxFileBytes) throw new PthFormatException($"{name}: {stream.Length} bytes, more than PthLimits.MaxFileBytes ({limits.MaxFileBytes}).");
        var head = new byte[Math.Min(stream.Length, 512)];
        stream.ReadExactly(head);
        stream.Position = 0;
        if (head is [0x50, 0x4b, 0x03, 0x04, ..]) return ReadZip(stream, path, name, limits);
        if (head is [0x80, 0x02, 0x8a, 0x0a, ..]) return ReadLegacy(stream, path, name, limits);
        if (head.Length >= 262 && head.AsSpan(257, 5).SequenceEqual("ustar"u8))
            throw new PthFormatException($"{name}: a tar checkpoint of torch before 0.4; load it in Python and save it again with torch.save(state_dict, path).");
        throw new PthFormatException($"{name}: not a PyTorch checkpoint (neither a zip archive nor a legacy pickle stream). safetensors files load as they are (--init-format safetensors).");
    }

    static TorchCheckpoint ReadZip(Stream stream, string path, string name, PthLimits limits)
    {
        var zip = ZipDirectory.Open(stream, name, limits);
        if (zip.Entries.Any(e => e.Name.EndsWith("constants.pkl", StringComparison.Ordinal)))
            throw new PthFormatException($"{name}: a TorchScript archive (it has constants.pkl); it holds code, not only weights. Save the module's state_dict() with torch.save instead.");
        var pickles = zip.Entries.Where(e => e.Name.EndsWith("data.pkl", StringComparison.Ordinal) && e.Name.Count(c => c == '/') == 1).ToList();
        if (pickles.Count != 1) throw new PthFormatException($"{name}: a zip without exactly one <folder>/data.pkl; not a torch.save checkpoint.");
        string prefix = pickles[0].Name[..^"data.pkl".Length];
        if (zip.Find(prefix + "byteorder") is { } order && System.Text.Encoding.ASCII.GetString(zip.Read(order, 16)) != "little")
            throw new PthFormatException($"{name}: a big-endian checkpoint; re-save it on a little-endian machine.");
        var storages = new Dictionary<string, PickleStorage>(StringComparer.Ordinal);
        using var pickle = new MemoryStream(zip.Read(pickles[0], limits.MaxPickleBytes));
        var root = new Unpickler(pickle, name, limits, pid => Storage(pid, 5, storages, name)).Load();
        if (pickle.Position != pickle.Length) throw new PthFormatException($"{name}: data.pkl has {pickle.Length - pickle.Position} bytes after its STOP.");
        byte[] Data(PickleStorage s)
        {
            var entry = zip.Find(prefix + "data/" + s.Key) ?? throw new PthFormatException($"{name}: storage '{s.Key}' has no record {prefix}data/{s.Key}.");
            long expected = checked(s.Numel * ElementSize(s.Type));
            if (entry.Size != expected)
                throw new PthFormatException($"{name}: record {entry.Name} has {entry.Size} bytes, but storage '{s.Key}' needs {s.Numel} x {ElementSize(s.Type)} = {expected}.");
            return zip.Read(entry, limits.MaxStorageBytes);
        }
        return Build(path, name, "zip", root, Data, limits);
    }

    static TorchCheckpoint ReadLegacy(Stream stream, string path, string name, PthLimits limits)
    {
        var storages = new Dictionary<string, PickleStorage>(StringComparer.Ordinal);
        object? Next() => new Unpickler(stream, name, limits, pid => Storage(pid, 6, storages, name)).Load();
        if (Next() is not BigInteger magic || magic != BigInteger.Parse("119547037146038801333356"))
            throw new PthFormatException($"{name}: a pickle stream without torch's legacy magic number.");
        if (Next() is not 1001L) throw new PthFormatException($"{name}: a legacy checkpoint of an unknown protocol version.");
        if (Next() is not PickleDict info || info.Get("little_endian") is not true) throw new PthFormatException($"{name}: a legacy checkpoint from a big-endian machine or without sys_info.");
        var root = Next();
        if (Next() is not List<object?> keys || keys.Any(k => k is not string)) throw new PthFormatException($"{name}: the legacy storage key list is missing.");
        var data = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        var count = new byte[8];
        foreach (string key in keys.Cast<string>())
        {
            if (!storages.TryGetValue(key, out var s)) throw new PthFormatException($"{name}: the legacy key list names storage '{key}', which no tensor uses.");
            stream.ReadExactly(count);
            long numel = BinaryPrimitives.ReadInt64LittleEndian(count), bytes = checked(numel * ElementSize(s.Type));
            if (numel != s.Numel) throw new PthFormatException($"{name}: storage '{key}' declares {s.Numel} elements in the pickle and {numel} in the data.");
            if (bytes > Math.Min(limits.MaxStorageBytes, Array.MaxLength) || bytes > stream.Length - stream.Position)
                throw new PthFormatException($"{name}: storage '{key}' needs {bytes} bytes; {stream.Length - stream.Position} are left (truncated?) or it exceeds PthLimits.MaxStorageBytes.");
            data[key] = new byte[bytes];
            stream.ReadExactly(data[key]);
        }
        return Build(path, name, "legacy", root, s => data.TryGetValue(s.Key, out var d) ? d : throw new PthFormatException($"{name}: storage '{s.Key}' has no data."), limits);
    }

    /// <summary>('storage', type, key, location, numel[, view_metadata]): one storage per key, consistent across uses.</summary>
    static PickleStorage Storage(object?[] pid, int arity, Dictionary<string, PickleStorage> storages, string name)
    {
        if (pid.Length != arity || pid[0] is not "storage" || pid[1] is not PickleGlobal { Module: "torch" } type || pid[2] is not string key || pid[3] is not string || pid[4] is not long numel || numel < 0
            || (arity == 6 && pid[5] is not PickleNone))
            throw new PthFormatException($"{name}: a persistent id ({string.Join(", ", pid.Select(p => p?.ToString() ?? "null"))}) that is not ('storage', type, key, location, numel{(arity == 6 ? ", None" : "")}).");
        if (storages.TryGetValue(key, out var known))
            return known.Type == type.Name && known.Numel == numel ? known
                : throw new PthFormatException($"{name}: storage '{key}' is used as {known.Type}[{known.Numel}] and as {type.Name}[{numel}].");
        return storages[key] = new PickleStorage(type.Name, key, numel);
    }

    static TorchCheckpoint Build(string path, string name, string format, object? root, Func<PickleStorage, byte[]> data, PthLimits limits)
    {
        var (location, dict) = StateDict(root) ?? throw new PthFormatException(
            $"{name}: no dict of tensors at the top level or under {string.Join(", ", Wrappers.Select(w => $"'{w}'"))}" +
            (root is PickleDict d ? $"; the top level has {string.Join(", ", d.Items.Take(12).Select(i => $"'{i.Key}'"))}." : "."));
        if (dict.Count > limits.MaxTensors) throw new PthFormatException($"{name}: {dict.Count} entries, more than PthLimits.MaxTensors ({limits.MaxTensors}).");
        var keys = dict.Items.Where(i => i.Value is PickleTensor).Select(i => i.Key.ToString()!).ToList();
        bool strip = keys.Count > 0 && keys.All(k => k.StartsWith("module.", StringComparison.Ordinal));
        var tensors = new Dictionary<string, HostArray>(StringComparer.Ordinal);
        var dtypes = new Dictionary<string, string>(StringComparer.Ordinal);
        var skipped = new List<string>();
        var bytes = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        long output = 0;
        foreach (var (key, value) in dict.Items)
        {
            string k = key.ToString()!;
            if (value is not PickleTensor t) { skipped.Add(k); continue; }
            long count = t.Size.Aggregate(1L, (a, b) => checked(a * b));
            output = checked(output + 4 * count);
            if (count > Array.MaxLength || output > limits.MaxOutputBytes)
                throw new PthFormatException($"{name}: tensor '{k}' of size ({string.Join(", ", t.Size)}) takes the float32 data past PthLimits.MaxOutputBytes ({limits.MaxOutputBytes}) or one array's length.");
            if (strip) k = k["module.".Length..];
            if (!bytes.TryGetValue(t.Storage.Key, out var raw)) bytes[t.Storage.Key] = raw = data(t.Storage);
            tensors[k] = new HostArray([.. t.Size.Select(s => checked((int)s))], Gather(t, raw));
            dtypes[k] = DTypeName(t.Storage.Type);
        }
        return new TorchCheckpoint(path, format, location, tensors, dtypes, skipped);
    }

    static (string, PickleDict)? StateDict(object? root)
    {
        if (root is not PickleDict top) return null;
        if (top.Items.Any(i => i.Value is PickleTensor)) return ("", top);
        foreach (var w in Wrappers)
            if (top.Get(w) is PickleDict inner && inner.Items.Any(i => i.Value is PickleTensor)) return (w, inner);
        return null;
    }

    /// <summary>The view's elements in row-major order, converted to float32.</summary>
    static float[] Gather(PickleTensor t, byte[] raw)
    {
        long count = t.Size.Aggregate(1L, (a, b) => checked(a * b));
        var values = new float[count];
        if (count == 0) return values;
        int size = ElementSize(t.Storage.Type), rank = t.Size.Length;
        var index = new long[rank];
        for (long i = 0; i < count; i++)
        {
            long e = t.Offset;
            for (int d = 0; d < rank; d++) e += index[d] * t.Stride[d];
            values[i] = Element(t.Storage.Type, raw.AsSpan((int)(e * size), size));
            for (int d = rank - 1; d >= 0 && ++index[d] == t.Size[d]; d--) index[d] = 0;
        }
        return values;
    }

    static float Element(string type, ReadOnlySpan<byte> b) => type switch
    {
        "FloatStorage" => BinaryPrimitives.ReadSingleLittleEndian(b),
        "HalfStorage" => (float)BinaryPrimitives.ReadHalfLittleEndian(b),
        "BFloat16Storage" => BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(b) << 16),
        "DoubleStorage" => (float)BinaryPrimitives.ReadDoubleLittleEndian(b),
        "LongStorage" => BinaryPrimitives.ReadInt64LittleEndian(b),
        "IntStorage" => BinaryPrimitives.ReadInt32LittleEndian(b),
        "ShortStorage" => BinaryPrimitives.ReadInt16LittleEndian(b),
        "CharStorage" => (sbyte)b[0],
        "ByteStorage" => b[0],
        _ => b[0] != 0 ? 1f : 0f,   // BoolStorage
    };

    static int ElementSize(string type) => type switch
    {
        "DoubleStorage" or "LongStorage" => 8,
        "FloatStorage" or "IntStorage" => 4,
        "HalfStorage" or "BFloat16Storage" or "ShortStorage" => 2,
        _ => 1,
    };

    static string DTypeName(string type) => type switch
    {
        "FloatStorage" => "float32", "HalfStorage" => "float16", "BFloat16Storage" => "bfloat16", "DoubleStorage" => "float64",
        "LongStorage" => "int64", "IntStorage" => "int32", "ShortStorage" => "int16", "CharStorage" => "int8", "ByteStorage" => "uint8", _ => "bool",
    };
}
