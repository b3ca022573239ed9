using System.Buffers.Binary;
using Sbp.IO;

namespace Sbp.Engine.Tests.Reliability;

// Mutated files on disk (SafeTensors.Load, ReadHeader), each outcome predicted from where the mutation changed the file.
public partial class SafeTensorsFuzzTests
{
    /// <summary>Where a mutation changed a file: nowhere; only inside the data section (same length); elsewhere (length field, header, size).</summary>
    enum Change { None, Data, Header }

    static Change Classify(byte[] valid, byte[] mutated)
    {
        if (mutated.AsSpan().SequenceEqual(valid)) return Change.None;
        int dataStart = 8 + Split(valid).Header.Length;
        return mutated.Length == valid.Length && mutated.AsSpan(0, dataStart).SequenceEqual(valid.AsSpan(0, dataStart)) ? Change.Data : Change.Header;
    }

    /// <summary>
    /// The tensors a file with the valid file's header holds, from the writer's documented layout rather
    /// than the reader: sorted by name, contiguous from the start of the data section.
    /// </summary>
    static List<(SafeTensorsEntry Entry, long Begin, byte[] Bytes)> Expected(byte[] file)
    {
        long at = 8 + (long)BinaryPrimitives.ReadUInt64LittleEndian(file), offset = 0;
        var tensors = new List<(SafeTensorsEntry, long, byte[])>();
        foreach (var e in Entries().OrderBy(e => e.Name, StringComparer.Ordinal))
        {
            tensors.Add((e, offset, file[(int)(at + offset)..(int)(at + offset + e.Bytes)]));
            offset += e.Bytes;
        }
        return tensors;
    }

    /// <summary>The header as written: names, dtypes, shapes and offsets of <paramref name="expected"/>, the metadata, and the checksum when written.</summary>
    static void AssertHeader(IReadOnlyDictionary<string, string> metadata, IReadOnlyList<SafeTensorsInfo> tensors,
        List<(SafeTensorsEntry Entry, long Begin, byte[] Bytes)> expected, bool checksum, string what)
    {
        Assert.That(tensors.Select(t => (t.Name, t.DType, t.Shape, t.Begin, t.End)),
            Is.EqualTo(expected.Select(x => (x.Entry.Name, x.Entry.DType, x.Entry.Shape, x.Begin, x.Begin + x.Entry.Bytes))), $"{what}: tensors");
        Assert.That(metadata.Where(kv => kv.Key != SafeTensors.ChecksumKey), Is.EquivalentTo(Metadata), $"{what}: metadata");
        Assert.That(metadata.ContainsKey(SafeTensors.ChecksumKey), Is.EqualTo(checksum), $"{what}: checksum");
    }

    /// <summary>The whole file: its header as written and every tensor's bytes.</summary>
    static void AssertHolds(SafeTensorsFile file, List<(SafeTensorsEntry Entry, long Begin, byte[] Bytes)> expected, bool checksum, string what)
    {
        AssertHeader(file.Metadata, file.Tensors, expected, checksum, what);
        foreach (var (e, _, bytes) in expected)
            Assert.That(file.Data(e.Name).ToArray(), Is.EqualTo(bytes), $"{what}: bytes of {e.Name}");
    }

    /// <summary>Null when <paramref name="read"/> succeeds; the documented InvalidDataException naming the file when it rejects; any other exception fails.</summary>
    static InvalidDataException? Rejection(Action read, string path, string what)
    {
        try
        {
            read();
            return null;
        }
        catch (InvalidDataException e)
        {
            Assert.That(e.Message, Does.StartWith($"safetensors file '{path}': "), what);
            return e;
        }
        catch (Exception e) when (e is not AssertionException)
        {
            Assert.Fail($"{what}: threw {e.GetType().Name}, not InvalidDataException: {e.Message}\n{e.StackTrace}");
            throw;
        }
    }

    /// <summary>
    /// Mutations of a checksummed file on disk, each outcome predicted from where it changed the file.
    /// Load(requireChecksum) hashes the whole file, so only an unchanged file loads (with the original
    /// tensors); a change anywhere else, data bytes included, is rejected. ReadHeader reads neither the
    /// data nor the checksum: with only data bytes changed it returns the header as written; with the
    /// header or the size changed it rejects, or returns a layout that tiles the data section exactly
    /// (a header that still parses), which Load's checksum must then reject.
    /// </summary>
    [Test]
    public void MutatedFilesOnDiskAreLoadedOrRejected()
    {
        var dir = Directory.CreateTempSubdirectory("sbp-fuzz-");
        try
        {
            var valid = ValidFile(checksum: true);
            var original = Expected(valid);
            foreach (var (e, _, bytes) in original)
            {
                var written = new byte[e.Bytes];
                e.Fill(written);
                Assert.That(bytes, Is.EqualTo(written), $"the valid file holds {e.Name} where the layout says");
            }
            var rng = new Random(13);
            var path = Path.Combine(dir.FullName, "m.safetensors");
            var counts = new Dictionary<string, int>();
            void Count(string outcome) => counts[outcome] = counts.GetValueOrDefault(outcome) + 1;
            for (int k = -1; k < 400; k++)
            {
                var (kind, bytes) = k < 0 ? ("none", valid) : Mutate(valid, rng);
                var change = Classify(valid, bytes);
                string what = $"mutation {k} ({kind}, {change} changed)";
                File.WriteAllBytes(path, bytes);
                SafeTensorsFile? loaded = null;
                var loadError = Rejection(() => loaded = SafeTensors.Load(path, requireChecksum: true), path, what);
                (IReadOnlyDictionary<string, string> Metadata, IReadOnlyList<SafeTensorsInfo> Tensors) header = default;
                var headerError = Rejection(() => header = SafeTensors.ReadHeader(path), path, what);
                Count($"{change}: load {(loadError is null ? "ok" : "rejected")}, header {(headerError is null ? "ok" : "rejected")}");
                if (change == Change.None)
                {
                    Assert.That(loadError, Is.Null, $"{what}: the unchanged file was rejected");
                    AssertHolds(loaded!, original, checksum: true, what);
                }
                else
                {
                    Assert.That(loadError, Is.Not.Null, $"{what}: a changed checksummed file was accepted");
                    if (change == Change.Data) Assert.That(loadError!.Message, Does.Contain("SHA-256"), what);
                }
                if (change != Change.Header)
                {
                    Assert.That(headerError, Is.Null, $"{what}: the header as written was rejected");
                    AssertHeader(header.Metadata!, header.Tensors!, original, checksum: true, what);
                }
                else if (headerError is null)
                {
                    long data = bytes.Length - 8 - (long)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
                    Assert.That(header.Tensors!.Sum(t => t.Bytes), Is.EqualTo(data), $"{what}: the accepted header's tensors tile the data section");
                }
            }
            TestContext.Out.WriteLine(string.Join("\n", counts.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => $"{kv.Value,4}  {kv.Key}")));
            int Total(string prefix) => counts.Where(kv => kv.Key.StartsWith(prefix, StringComparison.Ordinal)).Sum(kv => kv.Value);
            Assert.That(Total("None: load ok"), Is.EqualTo(Total("None")).And.GreaterThanOrEqualTo(1), "unchanged files load");
            Assert.That(Total("Data: load rejected"), Is.GreaterThan(10), "data changes caught by the checksum");
            Assert.That(Total("Header: load rejected"), Is.GreaterThan(200), "header and size changes rejected");
            Assert.That(Total("Header: load rejected, header ok"), Is.GreaterThan(0), "header changes only the checksum catches");
        }
        finally { dir.Delete(recursive: true); }
    }

    /// <summary>
    /// Without a checksum nothing can tell a changed data byte from an intended one: a file whose data
    /// bytes alone were changed loads with exactly the changed bytes, at the offsets and with the names,
    /// dtypes and shapes as written. Requiring the checksum rejects it.
    /// </summary>
    [Test]
    public void DataMutationsWithoutAChecksumLoadTheMutatedBytes()
    {
        var dir = Directory.CreateTempSubdirectory("sbp-fuzz-");
        try
        {
            var valid = ValidFile(checksum: false);
            int dataStart = 8 + Split(valid).Header.Length;
            var rng = new Random(14);
            var path = Path.Combine(dir.FullName, "d.safetensors");
            int changed = 0;
            for (int k = 0; k < 100; k++)
            {
                var bytes = (byte[])valid.Clone();
                for (int i = 1 + rng.Next(4); i > 0; i--)
                    bytes[dataStart + rng.Next(valid.Length - dataStart)] ^= (byte)(1 + rng.Next(255));
                Assert.That(Classify(valid, bytes), Is.EqualTo(Change.Data).Or.EqualTo(Change.None));
                string what = $"data mutation {k}";
                File.WriteAllBytes(path, bytes);
                AssertHolds(SafeTensors.Load(path), Expected(bytes), checksum: false, what);
                var e = Rejection(() => SafeTensors.Load(path, requireChecksum: true), path, what);
                Assert.That(e?.Message, Does.Contain("checksum"), $"{what}: requireChecksum");
                if (!bytes.AsSpan().SequenceEqual(valid)) changed++;
            }
            Assert.That(changed, Is.GreaterThan(90), "most mutations changed a byte");
        }
        finally { dir.Delete(recursive: true); }
    }
}
