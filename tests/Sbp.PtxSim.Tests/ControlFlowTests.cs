using Sbp.PtxSim.Tests.Support;

namespace Sbp.PtxSim.Tests;

/// <summary>Loops, divergent branches and their reconvergence, early exit, special registers.</summary>
public class ControlFlowTests
{
    [Test]
    public void LoopWithLaneDependentTripCount()
    {
        // out[t] = sum_{i < t % 7} (i + 1)
        var got = new Harness().RunElementwise("""
            rem.u32 %r4, %r0, 7;
            mov.u32 %r3, 0;
            mov.u32 %r5, 0;
            setp.eq.u32 %p1, %r4, 0;
            @%p1 bra $DONE;
            $LOOP:
            add.u32 %r5, %r5, 1;
            add.u32 %r3, %r3, %r5;
            setp.lt.u32 %p1, %r5, %r4;
            @%p1 bra $LOOP;
            $DONE:
            """, new uint[70], new uint[70]);
        for (uint t = 0; t < 70; t++)
        {
            uint n = t % 7;
            Assert.That(got[t], Is.EqualTo(n * (n + 1) / 2), $"thread {t}");
        }
    }

    [Test]
    public void IfElseReconvergesBeforeAWarpShuffle()
    {
        // Odd lanes take one path, even lanes the other; after reconvergence every lane reads its neighbour's value
        // with shfl.sync (which fails unless all 32 lanes execute it together).
        var got = new Harness().RunElementwise("""
            and.b32 %r4, %r0, 1;
            setp.eq.u32 %p1, %r4, 0;
            @%p1 bra $EVEN;
            mul.lo.u32 %r5, %r0, 10;
            bra $JOIN;
            $EVEN:
            mul.lo.u32 %r5, %r0, 100;
            $JOIN:
            shfl.sync.bfly.b32 %r3, %r5, 1, 31, 0xffffffff;
            """, new uint[64], new uint[64]);
        for (uint t = 0; t < 64; t++)
        {
            uint n = t ^ 1;
            Assert.That(got[t], Is.EqualTo((n & 1) == 0 ? n * 100 : n * 10), $"thread {t}");
        }
    }

    [Test]
    public void EarlyExitLeavesOtherThreadsRunning()
    {
        var h = new Harness();
        ulong po = h.Upload(Enumerable.Repeat(-5, 40).ToArray());
        const string ptx = Harness.Header + """
            .visible .entry k(.param .u64 p_out, .param .u32 p_n)
            {
                .reg .pred %p<2>;
                .reg .b32 %r<8>;
                .reg .b64 %rd<4>;
                ld.param.u64 %rd1, [p_out];
                ld.param.u32 %r1, [p_n];
                mov.u32 %r2, %ctaid.x;
                mov.u32 %r3, %ntid.x;
                mov.u32 %r4, %tid.x;
                mad.lo.s32 %r5, %r2, %r3, %r4;
                setp.ge.u32 %p1, %r5, %r1;
                @%p1 exit;
                mul.wide.u32 %rd2, %r5, 4;
                add.s64 %rd3, %rd1, %rd2;
                st.global.u32 [%rd3], %r5;
                ret;
            }
            """;
        var s = h.Run(ptx, "k", new Dim3(3), new Dim3(16), 0, KernelArg.Ptr(po), KernelArg.U32(37));
        var got = h.Download<int>(po, 40);
        Assert.That(got.Take(37), Is.EqualTo(Enumerable.Range(0, 37)));
        Assert.That(got.Skip(37), Is.All.EqualTo(-5));
        Assert.That(s.InstructionsByKind["st.global.u32"], Is.EqualTo(37));
    }

    [Test]
    public void SpecialRegistersOfA3DLaunch()
    {
        var h = new Harness();
        int threads = 2 * 3 * 2 * (4 * 2 * 3);
        ulong po = h.Alloc<uint>(threads);
        const string ptx = Harness.Header + """
            .visible .entry k(.param .u64 p_out)
            {
                .reg .b32 %r<24>;
                .reg .b64 %rd<4>;
                ld.param.u64 %rd1, [p_out];
                mov.u32 %r1, %tid.x;
                mov.u32 %r2, %tid.y;
                mov.u32 %r3, %tid.z;
                mov.u32 %r4, %ntid.x;
                mov.u32 %r5, %ntid.y;
                mov.u32 %r6, %ntid.z;
                mov.u32 %r7, %ctaid.x;
                mov.u32 %r8, %ctaid.y;
                mov.u32 %r9, %ctaid.z;
                mov.u32 %r10, %nctaid.x;
                mov.u32 %r11, %nctaid.y;
                mad.lo.u32 %r12, %r9, %r11, %r8;
                mad.lo.u32 %r12, %r12, %r10, %r7;          // block linear
                mad.lo.u32 %r13, %r3, %r5, %r2;
                mad.lo.u32 %r13, %r13, %r4, %r1;          // thread linear
                mul.lo.u32 %r14, %r4, %r5;
                mul.lo.u32 %r14, %r14, %r6;
                mad.lo.u32 %r15, %r12, %r14, %r13;        // global linear
                mov.u32 %r16, %laneid;
                mov.u32 %r17, %warpid;
                shl.b32 %r17, %r17, 5;
                add.u32 %r16, %r16, %r17;                 // == thread linear
                mul.lo.u32 %r18, %r16, 1000;
                add.u32 %r18, %r18, %r12;
                mul.wide.u32 %rd2, %r15, 4;
                add.s64 %rd3, %rd1, %rd2;
                st.global.u32 [%rd3], %r18;
                ret;
            }
            """;
        h.Run(ptx, "k", new Dim3(2, 3, 2), new Dim3(4, 2, 3), 0, KernelArg.Ptr(po));
        var got = h.Download<uint>(po, threads);
        for (int g = 0; g < threads; g++)
            Assert.That(got[g], Is.EqualTo((uint)(g % 24 * 1000 + g / 24)), $"global thread {g}");
    }

    [Test]
    public void DivergentBraUniIsReported()
    {
        var ex = Assert.Throws<PtxSimException>(() => new Harness().RunElementwise("""
            setp.eq.u32 %p1, %r0, 0;
            @%p1 bra.uni $X;
            $X:
            mov.u32 %r3, 0;
            """, new uint[4], new uint[4]));
        Assert.That(ex!.Message, Does.Contain("bra.uni is divergent"));
    }

    [Test]
    public void EndlessLoopHitsTheInstructionLimit()
    {
        var h = new Harness();
        h.Sim.WarpInstructionLimit = 10_000;
        var ex = Assert.Throws<PtxSimException>(() => h.Run(Harness.Header + """
            .visible .entry k()
            {
            $L:
                bra $L;
            }
            """, "k", new Dim3(1), new Dim3(32), 0));
        Assert.That(ex!.Message, Does.Contain("loops forever"));
    }
}
