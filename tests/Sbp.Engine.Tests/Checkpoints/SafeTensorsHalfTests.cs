using System.Buffers.Binary;
using System.Text;
using Sbp.Engine.Tests.Support;
using Sbp.IO;
using Sbp.Tensors;

namespace Sbp.Engine.Tests.Checkpoints;

/// <summary>BF16 and F16 in safetensors files: read from bytes written by hand, written bit for bit, loaded into Float32 parameters.</summary>
public class SafeTensorsHalfTests : DeviceTest
{
    string _dir = null!;

    [SetUp]
    public void MakeDir() => _dir = Directory.CreateTempSubdirectory("sbp-safetensors-half-").FullName;

    [TearDown]
    public void RemoveDir() => Directory.Delete(_dir, recursive: true);

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
        var path = Path.Combine(_dir, "hand.safetensors");
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
        var path = Path.Combine(_dir, "written.safetensors");
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
