using System.Buffers.Binary;
using System.Text;
using System.Text.RegularExpressions;
using Sbp.Engine.Tests.Support;
using Sbp.IO;
using Sbp.Tensors;

namespace Sbp.Engine.Tests.Reliability;

/// <summary>
/// Seeded fuzzing of the safetensors reader: thousands of byte-level and header-level mutations
/// and truncations of valid files (with and without the checksum). Every read must return a
/// complete, valid file or throw <see cref="InvalidDataException"/>, within a timeout; tensors
/// made from accepted files must come back whole, and the device pool must end at its baseline.
/// </summary>
public partial class SafeTensorsFuzzTests
{
    static readonly TimeSpan CallTimeout = TimeSpan.FromSeconds(10);

    /// <summary>A stream that cannot seek (the reader's streaming path: no length, no checksum on write).</summary>
    sealed class ForwardOnly(Stream inner) : Stream
    {
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => inner.CanWrite;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() => inner.Flush();
        public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => inner.Write(buffer, offset, count);
    }

    static SafeTensorsEntry[] Entries() =>
    [
        SafeTensorsEntry.FromArray("blocks.0.weight", Rand.Uniform(1, 24), new Shape(4, 6)),
        SafeTensorsEntry.FromArray("blocks.0.bias", Rand.Uniform(2, 4), new Shape(4)),
        SafeTensorsEntry.FromArray("step", [7], new Shape()),
        SafeTensorsEntry.FromArray("labels", [0, 3, 1, 2, 2], new Shape(5)),
        SafeTensorsEntry.FromArray("empty", Array.Empty<float>(), new Shape(0, 3)),
    ];

    static readonly Dictionary<string, string> Metadata = new() { ["format"] = "pt", ["epoch"] = "3" };

    static byte[] ValidFile(bool checksum)
    {
        var ms = new MemoryStream();
        SafeTensors.Write(checksum ? ms : new ForwardOnly(ms), Entries(), Metadata);
        return ms.ToArray();
    }

    static (byte[] Header, byte[] Data) Split(byte[] file)
    {
        int n = (int)BinaryPrimitives.ReadUInt64LittleEndian(file);
        return (file[8..(8 + n)], file[(8 + n)..]);
    }

    static byte[] Join(byte[] header, byte[] data, ulong? length = null)
    {
        var f = new byte[8 + header.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(f, length ?? (ulong)header.Length);
        header.CopyTo(f, 8);
        data.CopyTo(f, 8 + header.Length);
        return f;
    }

    [GeneratedRegex(@"-?\d+(\.\d+)?([eE][-+]?\d+)?|""(?:[^""\\]|\\.)*""|[{}\[\]:,]")]
    private static partial Regex JsonToken();

    static readonly string[] OddValues =
    [
        "-1", "0", "1", "3", "24", "96", "2147483647", "2147483648", "-2147483649", "9223372036854775807", "9223372036854775808",
        "1e30", "1.5", "-0", "null", "true", "[]", "{}", "[1]", "[0,0]", "[-1,4]", "\"\"", "\"F32\"", "\"I32\"", "\"F64\"", "\"BF16\"",
        "\"x\"", "\"__metadata__\"", "\"dtype\"", "\"shape\"", "\"data_offsets\"", "[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]",
        "[2147483647,2147483647,2147483647]", "[[[[[[[[[[1]]]]]]]]]]", "\"\\u0000\"", "\"\\ud800\"",
    ];

    /// <summary>One mutation of a valid file: the kind (for the report) and the bytes.</summary>
    static (string Kind, byte[] Bytes) Mutate(byte[] valid, Random rng)
    {
        var (header, data) = Split(valid);
        switch (rng.Next(8))
        {
            case 0:
            {
                var f = (byte[])valid.Clone();
                int n = 1 + rng.Next(4);
                for (int i = 0; i < n; i++) f[rng.Next(f.Length)] ^= (byte)(1 << rng.Next(8));
                return ("bitflip", f);
            }
            case 1:
            {
                var f = (byte[])valid.Clone();
                f[rng.Next(f.Length)] = (byte)rng.Next(256);
                return ("byte", f);
            }
            case 2:
                return ("truncate", valid[..rng.Next(valid.Length)]);
            case 3:
            {
                ulong[] lengths = [0, 1, 2, 7, (ulong)header.Length - 1, (ulong)header.Length + 1, (ulong)valid.Length, (ulong)valid.Length - 8,
                    100_000_000, 100_000_001, ulong.MaxValue, 1UL << 63, (ulong)rng.NextInt64(0, 1 << 20)];
                return ("length", Join(header, data, lengths[rng.Next(lengths.Length)]));
            }
            case 4:
            {
                // Replace one JSON token with an odd value; the length field stays consistent.
                var text = Encoding.UTF8.GetString(header);
                var tokens = JsonToken().Matches(text);
                var m = tokens[rng.Next(tokens.Count)];
                var mutated = text[..m.Index] + OddValues[rng.Next(OddValues.Length)] + text[(m.Index + m.Length)..];
                return ("json-token", Join(Encoding.UTF8.GetBytes(mutated), data));
            }
            case 5:
            {
                // Delete, duplicate or swap JSON tokens.
                var text = Encoding.UTF8.GetString(header);
                var tokens = JsonToken().Matches(text);
                var a = tokens[rng.Next(tokens.Count)];
                var b = tokens[rng.Next(tokens.Count)];
                if (a.Index > b.Index) (a, b) = (b, a);
                string mutated = rng.Next(3) switch
                {
                    0 => text[..a.Index] + text[(a.Index + a.Length)..],
                    1 => text[..a.Index] + a.Value + a.Value + text[(a.Index + a.Length)..],
                    _ when a.Index + a.Length <= b.Index => text[..a.Index] + b.Value + text[(a.Index + a.Length)..b.Index] + a.Value + text[(b.Index + b.Length)..],
                    _ => text,
                };
                return ("json-structure", Join(Encoding.UTF8.GetBytes(mutated), data));
            }
            case 6:
            {
                // The data section shortened or extended (offsets no longer match).
                int delta = rng.Next(-8, 9);
                var d = delta < 0 ? data[..Math.Max(0, data.Length + delta)] : [.. data, .. new byte[delta]];
                return ("data-length", Join(header, d));
            }
            default:
            {
                // Random bytes in the header region.
                var h = (byte[])header.Clone();
                int n = 1 + rng.Next(8);
                for (int i = 0; i < n; i++) h[rng.Next(h.Length)] = (byte)rng.Next(32, 127);
                return ("header-bytes", Join(h, data));
            }
        }
    }

    /// <summary>Reads the bytes; an accepted file must be fully usable. Returns "ok" or the exception type.</summary>
    static string ReadAndUse(byte[] bytes, bool seekable, Device device, bool requireChecksum = false)
    {
        try
        {
            var file = SafeTensors.Read(seekable ? new MemoryStream(bytes) : new ForwardOnly(new MemoryStream(bytes)), "fuzz.safetensors", requireChecksum);
            foreach (var info in file.Tensors)
            {
                using var t = file.ToTensor(info.Name, device);
                Assert.That(t.Shape, Is.EqualTo(info.Shape));
                Assert.That(file.Data(info.Name).Length, Is.EqualTo(info.Bytes));
                long n = t.DType == DType.Float32 ? t.ToArray().Length : t.ToIntArray().Length;
                Assert.That(n, Is.EqualTo(info.Shape.Numel));
            }
            return "ok";
        }
        catch (InvalidDataException e)
        {
            Assert.That(e.Message, Does.StartWith("safetensors file 'fuzz.safetensors': "));
            return "InvalidData";
        }
    }

    /// <summary>With the checksum (and requireChecksum) no change at all may be accepted; without it, accepted files must be whole.</summary>
    [TestCase(true, 4000, 11)]
    [TestCase(false, 4000, 12)]
    public void MutatedFilesAreReadOrRejectedWithInvalidData(bool checksum, int mutations, int seed)
    {
        var device = Device.CreateCpu($"safetensors fuzz {checksum}");
        var valid = ValidFile(checksum);
        Assert.That(ReadAndUse(valid, seekable: true, device), Is.EqualTo("ok"));
        var rng = new Random(seed);
        var outcomes = new Dictionary<string, int>();
        for (int k = 0; k < mutations; k++)
        {
            var (kind, bytes) = Mutate(valid, rng);
            bool seekable = rng.Next(4) != 0;
            var task = Task.Run(() => ReadAndUse(bytes, seekable, device, requireChecksum: checksum));
            Assert.That(((IAsyncResult)task).AsyncWaitHandle.WaitOne(CallTimeout), Is.True, $"mutation {k} ({kind}) did not finish within {CallTimeout.TotalSeconds} s");
            string outcome;
            try { outcome = task.Result; }
            catch (AggregateException e)
            {
                Assert.Fail($"mutation {k} ({kind}, seekable {seekable}) threw {e.InnerException!.GetType().Name}: {e.InnerException.Message}\n{e.InnerException.StackTrace}\n" +
                            $"header: {Encoding.UTF8.GetString(bytes, 8, Math.Clamp(bytes.Length - 8, 0, 600))}");
                return;
            }
            outcomes[$"{kind}:{outcome}"] = outcomes.GetValueOrDefault($"{kind}:{outcome}") + 1;
            if (checksum && outcome == "ok")
                Assert.That(bytes, Is.EqualTo(valid), $"mutation {k} ({kind}) changed a checksummed file and was accepted");
            Assert.That(device.Pool.InUseBytes, Is.Zero, $"mutation {k} ({kind}) left device memory in use");
        }
        TestContext.Out.WriteLine(string.Join(", ", outcomes.OrderBy(kv => kv.Key).Select(kv => $"{kv.Key} {kv.Value}")));
        Assert.That(outcomes.Where(kv => kv.Key.EndsWith(":InvalidData", StringComparison.Ordinal)).Sum(kv => kv.Value), Is.GreaterThan(mutations / 2));
    }

    [Test]
    public void ANonNumericDataOffsetIsInvalidData()
    {
        // Found by the fuzzer: JsonElement.TryGetInt64 throws InvalidOperationException on a non-number.
        var (header, data) = Split(ValidFile(checksum: false));
        var text = Encoding.UTF8.GetString(header);
        var at = text.IndexOf("\"data_offsets\":[", StringComparison.Ordinal) + "\"data_offsets\":[".Length;
        var bad = text[..at] + "\"0\"" + text[text.IndexOf(',', at)..];
        var ex = Assert.Throws<InvalidDataException>(() => SafeTensors.Read(new MemoryStream(Join(Encoding.UTF8.GetBytes(bad), data)), "x"));
        Assert.That(ex!.Message, Does.Contain("data_offsets"));
    }
}
