using Sbp.PtxSim.Tests.Support;

namespace Sbp.PtxSim.Tests;

/// <summary>cvt: float-to-integer rounding and saturation, integer-to-float rounding modes, integer widths.</summary>
public class ConvertTests
{
    private static readonly float[] F = [2.5f, 3.5f, -2.5f, -0.7f, 0.7f, 1e10f, -1e10f, float.NaN, 16777217f, 4294967296f];

    private static int[] FloatToInt(string cvt) =>
        new Harness().RunElementwise($"{cvt} %r3, %f1;", F.Select(BitConverter.SingleToUInt32Bits).ToArray(), new uint[F.Length])
            .Select(x => (int)x).ToArray();

    [Test]
    public void RoundToNearestEven() =>
        Assert.That(FloatToInt("cvt.rni.s32.f32"), Is.EqualTo(new[] { 2, 4, -2, -1, 1, int.MaxValue, int.MinValue, 0, 16777216, int.MaxValue }));

    [Test]
    public void Truncate() =>
        Assert.That(FloatToInt("cvt.rzi.s32.f32"), Is.EqualTo(new[] { 2, 3, -2, 0, 0, int.MaxValue, int.MinValue, 0, 16777216, int.MaxValue }));

    [Test]
    public void FloorAndCeiling()
    {
        Assert.That(FloatToInt("cvt.rmi.s32.f32"), Is.EqualTo(new[] { 2, 3, -3, -1, 0, int.MaxValue, int.MinValue, 0, 16777216, int.MaxValue }));
        Assert.That(FloatToInt("cvt.rpi.s32.f32"), Is.EqualTo(new[] { 3, 4, -2, 0, 1, int.MaxValue, int.MinValue, 0, 16777216, int.MaxValue }));
    }

    [Test]
    public void UnsignedSaturatesNegativesToZero() =>
        Assert.That(FloatToInt("cvt.rzi.u32.f32").Select(x => (uint)x),
            Is.EqualTo(new uint[] { 2, 3, 0, 0, 0, uint.MaxValue, 0, 0, 16777216, uint.MaxValue }));

    [Test]
    public void IntToFloatRoundingModes()
    {
        // 16777217 is not representable: .rn ties to even (16777216), .rp rounds up, .rz toward zero.
        uint[] a = [16777217, unchecked((uint)-16777217), 7, 0x7FFFFFFF];
        var h = new Harness();
        float[] Run(string cvt) => h.RunElementwise($"{cvt} %f3, %r1;\n mov.b32 %r3, %f3;", a, new uint[a.Length]).Select(BitConverter.UInt32BitsToSingle).ToArray();
        Assert.That(Run("cvt.rn.f32.s32"), Is.EqualTo(new[] { 16777216f, -16777216f, 7f, 2147483648f }));
        Assert.That(Run("cvt.rz.f32.s32"), Is.EqualTo(new[] { 16777216f, -16777216f, 7f, 2147483520f }));
        Assert.That(Run("cvt.rp.f32.s32"), Is.EqualTo(new[] { 16777218f, -16777216f, 7f, 2147483648f }));
        Assert.That(Run("cvt.rm.f32.s32"), Is.EqualTo(new[] { 16777216f, -16777218f, 7f, 2147483520f }));
        Assert.That(Run("cvt.rn.f32.u32"), Is.EqualTo(new[] { 16777216f, 4278190080f, 7f, 2147483648f }));
    }

    [Test]
    public void IntegerWidths()
    {
        // sign- vs zero-extension to 64 bits, truncation back, .sat narrowing to s16 and u8.
        var got = new Harness().RunElementwise("""
            cvt.s64.s32 %rd8, %r1;
            cvt.u64.u32 %rd9, %r1;
            add.s64 %rd8, %rd8, %rd9;
            shr.u64 %rd8, %rd8, 16;
            cvt.u32.u64 %r4, %rd8;
            cvt.sat.s16.s32 %r5, %r2;
            cvt.sat.u8.s32 %r6, %r2;
            cvt.s32.s16 %r5, %r5;
            add.s32 %r3, %r4, %r5;
            add.s32 %r3, %r3, %r6;
            """, [-1, 5, -100000], [100000, -7, 200]);
        for (int k = 0; k < 3; k++)
        {
            int a = new[] { -1, 5, -100000 }[k], b = new[] { 100000, -7, 200 }[k];
            ulong s = (ulong)(long)a + (ulong)(uint)a;
            int expected = unchecked((int)(uint)(s >> 16) + Math.Clamp(b, short.MinValue, short.MaxValue) + Math.Clamp(b, 0, 255));
            Assert.That(got[k], Is.EqualTo(expected), $"a={a} b={b}");
        }
    }

    [Test]
    public void FloatToFloatRoundsToIntegral()
    {
        var got = new Harness().RunElementwise("cvt.rni.f32.f32 %f3, %f1;\n cvt.rmi.f32.f32 %f4, %f1;\n add.f32 %f3, %f3, %f4;\n cvt.sat.f32.f32 %f5, %f1;\n add.f32 %f3, %f3, %f5;\n mov.b32 %r3, %f3;",
            [2.5f, -1.5f, 0.25f], [0f, 0f, 0f]);
        Assert.That(got, Is.EqualTo(new[] { 2f + 2f + 1f, -2f - 2f + 0f, 0f + 0f + 0.25f }));
    }

    // 1, a bfloat16 tie that rounds down to even, one that rounds up, overflow, a float subnormal, -0, NaN, -infinity
    private static readonly uint[] Wide = [0x3F800000, 0x3F808000, 0x3F818000, 0x7F7FFFFF, 0x00012345, 0x80000000, 0x7FC00001, 0xFF800000];

    [Test]
    public void SixteenBitStorageCasts()
    {
        var h = new Harness();
        uint[] Narrow(string cvt) => h.RunElementwise($"{cvt} %h1, %f1;\n cvt.u32.u16 %r3, %h1;", Wide, new uint[Wide.Length]);
        Assert.That(Narrow("cvt.rn.bf16.f32"), Is.EqualTo(new uint[] { 0x3F80, 0x3F80, 0x3F82, 0x7F80, 0x0001, 0x8000, 0x7FFF, 0xFF80 }));
        Assert.That(Narrow("cvt.rn.f16.f32"), Is.EqualTo(new uint[] { 0x3C00, 0x3C04, 0x3C0C, 0x7C00, 0x0000, 0x8000, 0x7FFF, 0xFC00 }), "1 + 2^-8 and 1 + 3 x 2^-8 are float16 values");
        uint[] halves = [0x3F80, 0xC020, 0x7FC0, 0x0001, 0x3C00, 0xC100, 0x7BFF, 0x0001];
        uint[] Widen(string cvt) => h.RunElementwise($"cvt.u16.u32 %h1, %r1;\n {cvt} %f3, %h1;\n mov.b32 %r3, %f3;", halves, new uint[halves.Length]);
        Assert.That(Widen("cvt.f32.bf16").Take(4), Is.EqualTo(new uint[] { 0x3F800000, 0xC0200000, 0x7FC00000, 0x00010000 }));
        Assert.That(Widen("cvt.f32.f16").Skip(4).Select(BitConverter.UInt32BitsToSingle), Is.EqualTo(new[] { 1f, -2.5f, 65504f, 5.9604645e-8f }));
        Assert.That(() => h.RunElementwise("add.bf16 %h1, %h1, %h1;", Wide, new uint[Wide.Length]), Throws.Exception.With.Message.Contains("bf16"));
    }
}
