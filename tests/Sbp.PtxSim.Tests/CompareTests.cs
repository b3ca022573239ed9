using Sbp.PtxSim.Tests.Support;

namespace Sbp.PtxSim.Tests;

/// <summary>setp (signed / unsigned / float, ordered and unordered, p|q and combining forms), selp, predication.</summary>
public class CompareTests
{
    [Test]
    public void SignedVersusUnsignedCompare()
    {
        // %r3 bit 0: lt.s32, bit 1: lo.u32 (same as lt.u32), bit 2: ge.s32, bit 3: hs.u32
        var got = new Harness().RunElementwise("""
            setp.lt.s32 %p1, %r1, %r2;
            setp.lo.u32 %p2, %r1, %r2;
            setp.ge.s32 %p3, %r1, %r2;
            setp.hs.u32 %p4, %r1, %r2;
            selp.u32 %r4, 1, 0, %p1;
            selp.u32 %r5, 2, 0, %p2;
            selp.u32 %r6, 4, 0, %p3;
            selp.u32 %r7, 8, 0, %p4;
            or.b32 %r3, %r4, %r5;
            or.b32 %r3, %r3, %r6;
            or.b32 %r3, %r3, %r7;
            """, [-1, 1, 5], [1, -1, 5]);
        Assert.That(got, Is.EqualTo(new[] { 1 | 8, 2 | 4, 4 | 8 }));
    }

    [Test]
    public void FloatOrderedAndUnordered()
    {
        // ne is ordered (false on NaN), neu is unordered; p|q writes the complement to q.
        var got = new Harness().RunElementwise("""
            setp.ne.f32 %p1, %f1, %f2;
            setp.neu.f32 %p2, %f1, %f2;
            setp.lt.f32 %p3|%p4, %f1, %f2;
            selp.u32 %r4, 1, 0, %p1;
            selp.u32 %r5, 2, 0, %p2;
            selp.u32 %r6, 4, 0, %p3;
            selp.u32 %r7, 8, 0, %p4;
            or.b32 %r3, %r4, %r5;
            or.b32 %r3, %r3, %r6;
            or.b32 %r3, %r3, %r7;
            """, new[] { float.NaN, 1f, 2f }.Select(BitConverter.SingleToUInt32Bits).ToArray(), new[] { 1f, 2f, 2f }.Select(BitConverter.SingleToUInt32Bits).ToArray());
        Assert.That(got, Is.EqualTo(new uint[] { 2 | 8, 1 | 2 | 4, 8 }));
    }

    [Test]
    public void CombiningFormAndNegatedPredicate()
    {
        var got = new Harness().RunElementwise("""
            setp.gt.s32 %p1, %r2, 0;
            setp.lt.and.s32 %p2, %r1, 10, %p1;
            setp.lt.or.s32 %p3, %r1, 10, !%p1;
            selp.s32 %r4, 1, 0, %p2;
            selp.s32 %r5, 2, 0, %p3;
            or.b32 %r3, %r4, %r5;
            """, [5, 5, 20, 20], [1, -1, 1, -1]);
        Assert.That(got, Is.EqualTo(new[] { 1 | 2, 2, 0, 2 }));
    }

    [Test]
    public void PredicatedInstructionsOnlyRunWhereTheGuardHolds()
    {
        var got = new Harness().RunElementwise("""
            mov.u32 %r3, 100;
            setp.eq.s32 %p1, %r1, 0;
            @%p1 mov.u32 %r3, 7;
            @!%p1 add.s32 %r3, %r3, %r1;
            """, [0, 1, 2, 0], [0, 0, 0, 0]);
        Assert.That(got, Is.EqualTo(new[] { 7, 101, 102, 7 }));
    }

    [Test]
    public void PredicateLogic()
    {
        var got = new Harness().RunElementwise("""
            setp.ne.s32 %p1, %r1, 0;
            setp.ne.s32 %p2, %r2, 0;
            and.pred %p3, %p1, %p2;
            or.pred %p4, %p1, %p2;
            xor.pred %p5, %p1, %p2;
            not.pred %p6, %p1;
            selp.u32 %r4, 1, 0, %p3;
            selp.u32 %r5, 2, 0, %p4;
            selp.u32 %r6, 4, 0, %p5;
            selp.u32 %r7, 8, 0, %p6;
            or.b32 %r3, %r4, %r5;
            or.b32 %r3, %r3, %r6;
            or.b32 %r3, %r3, %r7;
            """, [0, 0, 1, 1], [0, 1, 0, 1]);
        Assert.That(got, Is.EqualTo(new[] { 8, 2 | 4 | 8, 2 | 4, 1 | 2 }));
    }

    [Test]
    public void SixtyFourBitCompareAndSelect()
    {
        var got = new Harness().RunElementwise("""
            cvt.s64.s32 %rd8, %r1;
            cvt.u64.u32 %rd9, %r2;
            setp.lt.s64 %p1, %rd8, %rd9;
            setp.lt.u64 %p2, %rd8, %rd9;
            selp.b64 %rd10, %rd8, %rd9, %p1;
            selp.b64 %rd11, 1, 2, %p2;
            add.s64 %rd10, %rd10, %rd11;
            cvt.u32.u64 %r3, %rd10;
            """, [-1, 3], [1, 2]);
        // a=-1: s64 -1 < 1 -> select -1; u64 0xFFFF... < 1 false -> +2: 1.   a=3: 3<2 false -> 2; u64 false -> +2: 4.
        Assert.That(got, Is.EqualTo(new[] { 1, 4 }));
    }
}
