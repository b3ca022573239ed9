using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using Sbp.Engine.Tests.Support;
using Sbp.IO;
using Sbp.Tensors;

namespace Sbp.Engine.Tests.Checkpoints;

public class SafeTensorsTests : DeviceTest
{
    string _dir = null!;

    [SetUp]
    public void MakeDir() => _dir = Directory.CreateTempSubdirectory("sbp-safetensors-").FullName;

    [TearDown]
    public void RemoveDir() => Directory.Delete(_dir, recursive: true);

    string PathOf(string name) => Path.Combine(_dir, name);

    [Test]
    public void FileWrittenByHandFromTheSpecLoads()
    {
        // Header not padded, keys in arbitrary order, __metadata__ last: all allowed by the spec.
        var json = "{\"b\":{\"dtype\":\"I32\",\"shape\":[3],\"data_offsets\":[8,20]}," +
                   "\"a\":{\"dtype\":\"F32\",\"shape\":[2,1],\"data_offsets\":[0,8]}," +
                   "\"__metadata__\":{\"format\":\"pt\"}}";
        var header = Encoding.UTF8.GetBytes(json);
        var bytes = new byte[8 + header.Length + 20];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)header.Length);
        header.CopyTo(bytes, 8);
        int d = 8 + header.Length;
        BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(d), 1.5f);
        BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(d + 4), -2.25f);
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(d + 8), 7);
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(d + 12), -1);
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(d + 16), 42);
        var path = PathOf("hand.safetensors");
        File.WriteAllBytes(path, bytes);

        var file = SafeTensors.Load(path);
        Assert.That(file.Metadata, Is.EquivalentTo(new Dictionary<string, string> { ["format"] = "pt" }));
        Assert.That(file.Tensors.Select(t => t.Name), Is.EqualTo(new[] { "a", "b" }));
        Assert.That(file.Info("a").Shape, Is.EqualTo(new Shape(2, 1)));
        Assert.That(file.ToFloatArray("a"), Is.EqualTo(new[] { 1.5f, -2.25f }));
        Assert.That(file.ToIntArray("b"), Is.EqualTo(new[] { 7, -1, 42 }));
        using var t = file.ToTensor("a", Device);
        Assert.That(t.ToArray(), Is.EqualTo(new[] { 1.5f, -2.25f }));
        Assert.That(t.Shape, Is.EqualTo(new Shape(2, 1)));
    }

    [Test]
    public void OurHeaderParsesAsTheSpecSays()
    {
        var path = PathOf("ours.safetensors");
        SafeTensors.Save(path,
        [
            SafeTensorsEntry.FromArray("z.weight", Rand.Normal(1, 6), new Shape(2, 3)),
            SafeTensorsEntry.FromArray("a.index", [1, 2, 3, 4, 5], new Shape(5)),
            SafeTensorsEntry.FromArray("m.empty", Array.Empty<float>(), new Shape(0, 4)),
            SafeTensorsEntry.FromArray("s.scalar", [3.5f], Shape.Scalar),
        ], new Dictionary<string, string> { ["note"] = "héllo \"quoted\"" });

        var bytes = File.ReadAllBytes(path);
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        Assert.That((8 + (long)n) % 8, Is.EqualTo(0), "data starts 8-byte aligned");
        var headerText = Encoding.UTF8.GetString(bytes, 8, (int)n);
        Assert.That(headerText, Does.StartWith("{"));
        Assert.That(headerText.TrimEnd(' '), Does.EndWith("}"), "padding is spaces only");
        using var doc = JsonDocument.Parse(headerText);
        var root = doc.RootElement;
        Assert.That(root.GetProperty("__metadata__").GetProperty("note").GetString(), Is.EqualTo("héllo \"quoted\""));
        Assert.That(root.GetProperty("__metadata__").GetProperty(SafeTensors.ChecksumKey).GetString(), Has.Length.EqualTo(64));

        var expected = new (string Name, string DType, int[] Shape, long Bytes)[]
        {
            ("a.index", "I32", [5], 20), ("m.empty", "F32", [0, 4], 0), ("s.scalar", "F32", [], 4), ("z.weight", "F32", [2, 3], 24),
        };
        long offset = 0;
        foreach (var (name, dtype, shape, size) in expected)   // sorted by name, contiguous
        {
            var e = root.GetProperty(name);
            Assert.That(e.GetProperty("dtype").GetString(), Is.EqualTo(dtype), name);
            Assert.That(e.GetProperty("shape").EnumerateArray().Select(x => x.GetInt32()), Is.EqualTo(shape), name);
            var off = e.GetProperty("data_offsets").EnumerateArray().Select(x => x.GetInt64()).ToArray();
            Assert.That(off, Is.EqualTo(new[] { offset, offset + size }), name);
            offset += size;
        }
        Assert.That(root.EnumerateObject().Count(), Is.EqualTo(5));
        Assert.That(bytes.LongLength, Is.EqualTo(8 + (long)n + offset), "offsets cover the data section exactly");
        var zStart = 8 + (int)n + 20 + 4;
        Assert.That(Enumerable.Range(0, 6).Select(i => BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan(zStart + 4 * i))),
            Is.EqualTo(Rand.Normal(1, 6)), "raw little-endian data");
    }

    [Test]
    public void RoundTripIsBitExact()
    {
        int[] bits = [0x7FC00001, 0x7F800001, unchecked((int)0xFFC12345), unchecked((int)0x80000000), 0, 0x7F800000,
            unchecked((int)0xFF800000), 1, 0x7F7FFFFF, 0x3F800000, 0x007FFFFF];
        var floats = bits.Select(BitConverter.Int32BitsToSingle).ToArray();
        var ints = new[] { int.MinValue, -1, 0, 1, int.MaxValue };
        var path = PathOf("bits.safetensors");
        using var ft = T(floats, 11);
        using var it = Idx(ints);
        SafeTensors.Save(path, new Dictionary<string, Tensor> { ["f"] = ft, ["i"] = it }, new Dictionary<string, string> { ["k"] = "v" });

        var file = SafeTensors.Load(path);
        using var back = file.ToTensor("f", Device);
        Assert.That(back.ToArray().Select(BitConverter.SingleToInt32Bits), Is.EqualTo(bits), "NaN payloads, -0.0, infinities, denormals");
        Assert.That(file.ToIntArray("i"), Is.EqualTo(ints));
        Assert.That(file.Metadata["k"], Is.EqualTo("v"));
        var bytes = File.ReadAllBytes(path);
        SafeTensors.Save(PathOf("again.safetensors"), [SafeTensorsEntry.FromTensor("f", back), SafeTensorsEntry.FromArray("i", file.ToIntArray("i"), new Shape(5))],
            new Dictionary<string, string> { ["k"] = "v" });
        Assert.That(File.ReadAllBytes(PathOf("again.safetensors")), Is.EqualTo(bytes), "writing is deterministic");
    }

    byte[] Sample()
    {
        var path = PathOf("sample.safetensors");
        SafeTensors.Save(path,
        [
            SafeTensorsEntry.FromArray("w", Rand.Normal(3, 12), new Shape(3, 4)),
            SafeTensorsEntry.FromArray("b", Rand.Normal(4, 3), new Shape(3)),
            SafeTensorsEntry.FromArray("labels", [0, 2, 1], new Shape(3)),
        ], new Dictionary<string, string> { ["step"] = "17" });
        return File.ReadAllBytes(path);
    }

    InvalidDataException Rejected(byte[] bytes, string name)
    {
        var path = PathOf(name);
        File.WriteAllBytes(path, bytes);
        var ex = Assert.Throws<InvalidDataException>(() => SafeTensors.Load(path))!;
        Assert.That(ex.Message, Does.Contain(path), "the message names the file");
        return ex;
    }

    [Test]
    public void TruncatedFilesAreRejected()
    {
        var bytes = Sample();
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        foreach (int cut in new[] { 0, 5, 8, 8 + (int)n / 2, 8 + (int)n, bytes.Length - 13, bytes.Length - 1 })
        {
            var ex = Rejected(bytes[..cut], $"cut{cut}.safetensors");
            Assert.That(ex.Message, Does.Contain("truncated"), $"cut at {cut}: {ex.Message}");
        }
        Assert.That(Rejected([.. bytes, 0], "longer.safetensors").Message, Does.Contain("trailing bytes"));
    }

    /// <summary>Our files carry a SHA-256 over length, header and data: any single flipped bit is caught.</summary>
    [Test]
    public void EverySingleBitFlipIsRejected()
    {
        var bytes = Sample();
        for (int i = 0; i < bytes.Length; i++)
        {
            var flipped = (byte[])bytes.Clone();
            flipped[i] ^= (byte)(1 << (i * 5 % 8));
            var path = PathOf("flip.safetensors");
            File.WriteAllBytes(path, flipped);
            Assert.That(() => SafeTensors.Load(path, requireChecksum: true), Throws.InstanceOf<InvalidDataException>().With.Message.Contains(path), $"bit flip at byte {i}");
        }
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        var dataFlip = (byte[])bytes.Clone();
        dataFlip[8 + (int)n + 5] ^= 0x10;
        Assert.That(Rejected(dataFlip, "data.safetensors").Message, Does.Contain("SHA-256"));
    }

    [Test]
    public void OversizedOrCorruptedHeaderLengthIsRejected()
    {
        var bytes = Sample();
        var huge = (byte[])bytes.Clone();
        BinaryPrimitives.WriteUInt64LittleEndian(huge, 200_000_000);
        Assert.That(Rejected(huge, "huge.safetensors").Message, Does.Contain("limit"));
        var top = (byte[])bytes.Clone();
        top[7] ^= 0x80;                                   // the top bit of the length
        Assert.That(Rejected(top, "top.safetensors").Message, Does.Contain("limit"));
        var past = (byte[])bytes.Clone();
        BinaryPrimitives.WriteUInt64LittleEndian(past, (ulong)bytes.Length);
        Assert.That(Rejected(past, "past.safetensors").Message, Does.Contain("follow it"));
    }

    static byte[] Hand(string json, int dataBytes)
    {
        var header = Encoding.UTF8.GetBytes(json);
        var bytes = new byte[8 + header.Length + dataBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)header.Length);
        header.CopyTo(bytes, 8);
        return bytes;
    }

    [TestCase("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]", 8, "not valid JSON")]
    [TestCase("[1,2]", 0, "does not start with '{'")]
    [TestCase("{\"a\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[0,16]}}", 16, "dtype 'F64'; this engine reads F32, BF16, F16 and I32")]
    [TestCase("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "12 bytes")]
    [TestCase("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, "overlap")]
    [TestCase("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[12,16]}}", 16, "gap")]
    [TestCase("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, "0 <= begin <= end")]
    [TestCase("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, "dimensions must be integers")]
    [TestCase("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "twice")]
    [TestCase("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, "truncated")]
    [TestCase("{\"__metadata__\":{\"k\":1}}", 0, "not a string")]
    public void InvalidHeadersAreRejected(string json, int dataBytes, string problem)
    {
        Assert.That(Rejected(Hand(json, dataBytes), "bad.safetensors").Message, Does.Contain(problem));
    }

    // ---- BF16 and F16: read from bytes written by hand, written bit for bit, loaded into Float32 parameters ----

    // 1, -2.5, 65504 and 2^-24 (float16's smallest subnormal): bfloat16 and float16 bit patterns worked out by hand
    static readonly float[] Values = [1f, -2.5f, 65504f, 5.9604645e-8f];
    static readonly ushort[] Bf16Bits = [0x3F80, 0xC020, 0x4780, 0x3380];
    static readonly ushort[] F16Bits = [0x3C00, 0xC100, 0x7BFF, 0x0001];

    [Test]
    public void AFileWrittenByHandWithBf16AndF16Loads()
    {
        var json = "{\"h\":{\"dtype\":\"F16\",\"shape\":[2,2],\"data_offsets\":[8,16]},\"b\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[0,8]}}";
        var header = Encoding.UTF8.GetBytes(json);
        var bytes = new byte[8 + header.Length + 16];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)header.Length);
        header.CopyTo(bytes, 8);
        for (int i = 0; i < 4; i++)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(8 + header.Length + 2 * i), Bf16Bits[i]);
            BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(8 + header.Length + 8 + 2 * i), F16Bits[i]);
        }
        var path = PathOf("hand-half.safetensors");
        File.WriteAllBytes(path, bytes);

        var file = SafeTensors.Load(path);
        using var b = file.ToTensor("b", Device);
        using var h = file.ToTensor("h", Device);
        using var wide = Tensor.Zeros(new Shape(2, 2), Device);
        file.CopyTo("h", wide);
        Assert.Multiple(() =>
        {
            Assert.That((file.Info("b").DType, file.Info("h").DType), Is.EqualTo((DType.BFloat16, DType.Float16)));
            Assert.That(file.ToFloatArray("b"), Is.EqualTo(new[] { 1f, -2.5f, 65536f, 5.9604645e-8f }), "bfloat16 keeps 8 bits of mantissa: 65504 is 65536");
            Assert.That(file.ToFloatArray("h"), Is.EqualTo(Values));
            Assert.That((b.DType, h.DType, h.Shape), Is.EqualTo((DType.BFloat16, DType.Float16, new Shape(2, 2))));
            Assert.That(h.ToArray(), Is.EqualTo(Values));
            Assert.That(wide.ToArray(), Is.EqualTo(Values), "an F16 tensor loads into a Float32 destination");
        });
    }

    [Test]
    public void Bf16AndF16TensorsAreWrittenBitForBit()
    {
        using var b = Tensor.FromArray(Values, new Shape(4), DType.BFloat16, Device);
        using var h = Tensor.FromArray(Values, new Shape(4), DType.Float16, Device);
        var path = PathOf("written-half.safetensors");
        SafeTensors.Save(path, new Dictionary<string, Tensor> { ["b"] = b, ["h"] = h });

        var (_, infos) = SafeTensors.ReadHeader(path);
        var bytes = File.ReadAllBytes(path);
        long data = 8 + (long)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        ushort[] Bits(string name)
        {
            var info = infos.Single(t => t.Name == name);
            return Enumerable.Range(0, 4).Select(i => BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan((int)(data + info.Begin + 2 * i)))).ToArray();
        }
        Assert.Multiple(() =>
        {
            Assert.That(infos.Select(t => (t.Name, t.DType, t.Bytes)), Is.EquivalentTo(new[] { ("b", DType.BFloat16, 8L), ("h", DType.Float16, 8L) }));
            Assert.That(Encoding.UTF8.GetString(bytes, 8, (int)(data - 8)), Does.Contain("\"dtype\":\"BF16\"").And.Contain("\"dtype\":\"F16\""));
            Assert.That(Bits("b"), Is.EqualTo(Bf16Bits));
            Assert.That(Bits("h"), Is.EqualTo(F16Bits));
        });
    }
}
