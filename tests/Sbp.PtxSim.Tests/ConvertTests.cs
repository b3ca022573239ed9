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
}
