using Sbp.PtxSim.Execution;
using Sbp.PtxSim.Tests.Support;

namespace Sbp.PtxSim.Tests;

/// <summary>Narrow loads and stores, register pack / unpack, shared vector accesses, the race detector's bookkeeping.</summary>
public class DataMovementTests
{
    [Test]
    public void NarrowLoadsExtendAndNarrowStoresTruncate()
    {
        const string ptx = Harness.Header + """
            .visible .entry k(.param .u64 p_bytes, .param .u64 p_out)
            {
                .reg .b32 %r<8>;
                .reg .b64 %rd<4>;
                .reg .b16 %rs<2>;
                ld.param.u64 %rd1, [p_bytes];
                ld.param.u64 %rd2, [p_out];
                ld.global.s8 %r1, [%rd1];
                ld.global.u8 %r2, [%rd1];
                ld.global.s16 %r3, [%rd1+2];
                ld.global.u16 %rs1, [%rd1+2];
                cvt.u32.u16 %r4, %rs1;
                ld.global.s8 %rd3, [%rd1];
                st.global.v4.u32 [%rd2], {%r1, %r2, %r3, %r4};
                st.global.u64 [%rd2+16], %rd3;
                st.global.u8 [%rd2+24], 0x1234;
                ret;
            }
            """;
        var h = new Harness();
        ulong b = h.Upload(new byte[] { 0xF0, 0, 0x34, 0x92 }), o = h.Alloc<uint>(8);
        h.Run(ptx, "k", new Dim3(1), new Dim3(1), 0, KernelArg.Ptr(b), KernelArg.Ptr(o));
        var r = h.Download<uint>(o, 8);
        Assert.That(r.Take(4), Is.EqualTo(new uint[] { 0xFFFFFFF0, 0xF0, 0xFFFF9234, 0x9234 }));
        Assert.That(r[4] | ((ulong)r[5] << 32), Is.EqualTo(0xFFFFFFFFFFFFFFF0UL));
        Assert.That(r[6], Is.EqualTo(0xFFFFFF34u), "one byte written, the rest still fresh (0xFF)");
    }

    [Test]
    public void PackAndUnpack()
    {
        var got = new Harness().RunElementwise("""
            mov.b64 %rd8, {%r1, %r2};
            shr.u64 %rd8, %rd8, 16;
            mov.b64 {%r4, %r5}, %rd8;
            xor.b32 %r3, %r4, %r5;
            """, [0x11112222u], [0x33334444u]);
        // rd8 = 0x33334444_11112222 >> 16 = 0x00003333_44441111
        Assert.That(got[0], Is.EqualTo(0x44441111u ^ 0x00003333u));
    }

    [Test]
    public void SharedVectorAccessesAndAtomicsIncDecCas()
    {
        const string ptx = Harness.Header + """
            .visible .entry k(.param .u64 p_out)
            {
                .reg .pred %p<2>;
                .reg .b32 %r<12>;
                .reg .b64 %rd<4>;
                .shared .align 16 .u32 s[8];
                ld.param.u64 %rd1, [p_out];
                mov.u32 %r1, %tid.x;
                setp.eq.u32 %p1, %r1, 0;
                @%p1 st.shared.v4.u32 [s], {0, 0, 7, 9};
                @%p1 st.shared.v2.u32 [s+16], {1, 2};
                bar.sync 0;
                atom.shared.inc.u32 %r2, [s], 4;          // wraps to 0 after 4
                atom.shared.dec.u32 %r3, [s+4], 3;
                atom.shared.cas.b32 %r4, [s+8], %r1, 100;  // thread 7 swaps
                atom.shared.min.s32 %r5, [s+12], %r1;
                bar.sync 0;
                @!%p1 bra $END;
                ld.shared.v4.u32 {%r6, %r7, %r8, %r9}, [s];
                st.global.v4.u32 [%rd1], {%r6, %r7, %r8, %r9};
            $END:
                ret;
            }
            """;
        var h = new Harness();
        ulong o = h.Alloc<uint>(4);
        h.Run(ptx, "k", new Dim3(1), new Dim3(40), 0, KernelArg.Ptr(o));
        // inc: 40 increments mod 5 -> 0. dec from 0 with bound 3: 0 -> 3, 2, 1, 0, 3, ... 40 steps -> 0. cas -> 100. min -> 0.
        Assert.That(h.Download<uint>(o, 4), Is.EqualTo(new uint[] { 0, 0, 100, 0 }));
    }

    [Test]
    public void RaceDetectorRemembersReadersFromSeveralWarps()
    {
        var rd = new RaceDetector();
        rd.NewBlock(16);
        Assert.That(rd.Read(0, 4, warp: 0, thread: 3, pc: 10), Is.Null);
        Assert.That(rd.Read(0, 4, warp: 1, thread: 40, pc: 11), Is.Null);
        var c = rd.Write(2, 1, warp: 0, thread: 5, pc: 12);
        Assert.That(c, Is.Not.Null);
        Assert.That(c!.Value.OtherThread, Is.EqualTo(40), "the reader from the other warp is reported");
        rd.NewEpoch();
        Assert.That(rd.Write(2, 1, warp: 0, thread: 5, pc: 12), Is.Null, "a barrier separates them");
        Assert.That(rd.Write(2, 1, warp: 0, thread: 6, pc: 12), Is.Null, "same warp");
        Assert.That(rd.Write(2, 1, warp: 2, thread: 70, pc: 13)?.OtherIsWrite, Is.True);
    }
}
