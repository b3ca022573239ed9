using Sbp.PtxSim.Tests.Support;

namespace Sbp.PtxSim.Tests;

/// <summary>Integer instructions against C# reference semantics (wrap-around, signedness, clamped shifts).</summary>
public class IntegerTests
{
    private static readonly int[] A = [0, 1, -1, 7, -7, int.MaxValue, int.MinValue, 123456789, -987654321, 65536, 3, -2];
    private static readonly int[] B = [5, 1, 3, -2, 2, 1, -1, 1000, -77, 65536, 35, 31];

    private static int[] Run(string body) => new Harness().RunElementwise(body, A, B);

    private static void Check(string body, Func<int, int, int> expected)
    {
        var got = Run(body);
        for (int k = 0; k < A.Length; k++)
            Assert.That(got[k], Is.EqualTo(expected(A[k], B[k])), $"{body} with a={A[k]}, b={B[k]}");
    }

    [Test] public void AddSubWrap() => Check("add.s32 %r4, %r1, %r2;\n sub.s32 %r3, %r4, 3;", (a, b) => unchecked(a + b - 3));
    [Test] public void AddSat() => Check("add.sat.s32 %r3, %r1, %r2;", (a, b) => (int)Math.Clamp((long)a + b, int.MinValue, int.MaxValue));
    [Test] public void MulLo() => Check("mul.lo.s32 %r3, %r1, %r2;", (a, b) => unchecked(a * b));
    [Test] public void MulHiSigned() => Check("mul.hi.s32 %r3, %r1, %r2;", (a, b) => (int)(((long)a * b) >> 32));
    [Test] public void MulHiUnsigned() => Check("mul.hi.u32 %r3, %r1, %r2;", (a, b) => (int)(uint)(((ulong)(uint)a * (uint)b) >> 32));
    [Test] public void MadLo() => Check("mad.lo.s32 %r3, %r1, %r2, 11;", (a, b) => unchecked(a * b + 11));
    [Test] public void DivRemSigned() => Check("div.s32 %r4, %r1, %r2;\n rem.s32 %r5, %r1, %r2;\n mul.lo.s32 %r4, %r4, 1000;\n add.s32 %r3, %r4, %r5;",
        (a, b) => unchecked((b == -1 ? -a : a / b) * 1000 + (b == -1 ? 0 : a % b)));
    [Test] public void DivUnsigned() => Check("div.u32 %r3, %r1, %r2;", (a, b) => (int)((uint)a / (uint)b));
    [Test] public void RemUnsigned() => Check("rem.u32 %r3, %r1, %r2;", (a, b) => (int)((uint)a % (uint)b));
    [Test] public void MinMax() => Check("min.s32 %r4, %r1, %r2;\n max.u32 %r5, %r1, %r2;\n xor.b32 %r3, %r4, %r5;",
        (a, b) => Math.Min(a, b) ^ (int)Math.Max((uint)a, (uint)b));
    [Test] public void NegAbs() => Check("neg.s32 %r4, %r1;\n abs.s32 %r5, %r2;\n add.s32 %r3, %r4, %r5;", (a, b) => unchecked(-a + (b < 0 ? -b : b)));
    [Test] public void Logic() => Check("and.b32 %r4, %r1, %r2;\n or.b32 %r5, %r1, 0xF0;\n xor.b32 %r6, %r4, %r5;\n not.b32 %r3, %r6;",
        (a, b) => ~((a & b) ^ (a | 0xF0)));
    [Test] public void ShiftsClampTheAmount() => Check("shl.b32 %r4, %r1, %r2;\n shr.s32 %r5, %r1, %r2;\n shr.u32 %r6, %r1, %r2;\n xor.b32 %r3, %r4, %r5;\n xor.b32 %r3, %r3, %r6;",
        (a, b) =>
        {
            uint s = (uint)b;
            int shl = s >= 32 ? 0 : a << (int)s;
            int sar = a >> (int)Math.Min(s, 31u);
            int shr = s >= 32 ? 0 : (int)((uint)a >> (int)s);
            return shl ^ sar ^ shr;
        });
    [Test] public void BitCounts() => Check("popc.b32 %r4, %r1;\n clz.b32 %r5, %r1;\n brev.b32 %r6, %r2;\n mad.lo.s32 %r3, %r5, 100, %r4;\n xor.b32 %r3, %r3, %r6;",
        (a, b) => (System.Numerics.BitOperations.LeadingZeroCount((uint)a) * 100 + System.Numerics.BitOperations.PopCount((uint)a)) ^ (int)Rev((uint)b));

    private static uint Rev(uint v)
    {
        uint r = 0;
        for (int k = 0; k < 32; k++) r |= ((v >> k) & 1) << (31 - k);
        return r;
    }

    [Test]
    public void DivisionByZeroAndOverflowDoNotTrap()
    {
        var got = new Harness().RunElementwise("div.s32 %r4, %r1, %r2;\n div.u32 %r5, %r1, 0;\n xor.b32 %r3, %r4, %r5;",
            [int.MinValue, 5], [-1, 0]);
        Assert.That(got, Is.EqualTo(new[] { int.MinValue ^ -1, -1 ^ -1 }));
    }

    [Test]
    public void SixtyFourBitArithmeticAndWideMultiply()
    {
        // %rd8 = a * b (wide, signed) + (u64)(uint)a << 33; result = low32 ^ high32.
        const string body = """
            mul.wide.s32 %rd8, %r1, %r2;
            cvt.u64.u32 %rd9, %r1;
            shl.b64 %rd9, %rd9, 33;
            add.s64 %rd8, %rd8, %rd9;
            mul.hi.u64 %rd10, %rd8, %rd9;
            xor.b64 %rd8, %rd8, %rd10;
            shr.u64 %rd11, %rd8, 32;
            cvt.u32.u64 %r4, %rd8;
            cvt.u32.u64 %r5, %rd11;
            xor.b32 %r3, %r4, %r5;
            """;
        var got = Run(body);
        for (int k = 0; k < A.Length; k++)
        {
            ulong w = (ulong)((long)A[k] * B[k]);
            ulong s = (ulong)(uint)A[k] << 33;
            w += s;
            w ^= Math.BigMul(w, s, out _);
            Assert.That(got[k], Is.EqualTo((int)(uint)w ^ (int)(uint)(w >> 32)), $"a={A[k]}, b={B[k]}");
        }
    }

    [Test]
    public void MadWideAndUnsignedWide()
    {
        var got = new Harness().RunElementwise("""
            mul.wide.u32 %rd8, %r1, %r2;
            mad.wide.u32 %rd9, %r1, %r2, %rd8;
            shr.u64 %rd9, %rd9, 1;
            sub.s64 %rd9, %rd9, %rd8;
            cvt.u32.u64 %r3, %rd9;
            """, [uint.MaxValue, 3u, 0x80000000u], [uint.MaxValue, 5u, 2u]);
        Assert.That(got, Is.EqualTo(new uint[] { 0, 0, 0 }));
    }
}
