using Sbp.PtxSim.Tests.Support;

namespace Sbp.PtxSim.Tests;

/// <summary>Static and dynamic shared memory, bar.sync, race detection between warps, deadlocks.</summary>
public class SharedMemoryTests
{
    /// <summary>Reverses a block's elements through shared memory; BARRIER is replaced by "bar.sync 0;" or nothing.</summary>
    private const string Reverse = Harness.Header + """
        .visible .entry reverse(.param .u64 p_x, .param .u64 p_y)
        {
            .reg .b32 %r<12>;
            .reg .b64 %rd<8>;
            .reg .f32 %f<2>;
            .shared .align 4 .f32 buf[64];
            ld.param.u64 %rd1, [p_x];
            ld.param.u64 %rd2, [p_y];
            mov.u32 %r1, %tid.x;
            mov.u32 %r2, %ntid.x;
            mov.u32 %r3, %ctaid.x;
            mad.lo.u32 %r4, %r3, %r2, %r1;
            mul.wide.u32 %rd3, %r4, 4;
            add.s64 %rd4, %rd1, %rd3;
            ld.global.f32 %f1, [%rd4];
            shl.b32 %r5, %r1, 2;
            mov.u32 %r9, buf;
            add.u32 %r9, %r9, %r5;
            st.shared.f32 [%r9], %f1;
            BARRIER
            sub.u32 %r6, %r2, 1;
            sub.u32 %r6, %r6, %r1;
            shl.b32 %r7, %r6, 2;
            mov.u32 %r8, buf;
            add.u32 %r8, %r8, %r7;
            ld.shared.f32 %f1, [%r8];
            add.s64 %rd5, %rd2, %rd3;
            st.global.f32 [%rd5], %f1;
            ret;
        }
        """;

    private static (Harness H, ulong X, ulong Y) Setup(int n)
    {
        var h = new Harness();
        return (h, h.Upload(Enumerable.Range(0, n).Select(i => (float)i).ToArray()), h.Alloc<float>(n));
    }

    [Test]
    public void BarrierMakesTheBlockReversalCorrect()
    {
        var (h, x, y) = Setup(128);
        h.Run(Reverse.Replace("BARRIER", "bar.sync 0;"), "reverse", new Dim3(2), new Dim3(64), 0, KernelArg.Ptr(x), KernelArg.Ptr(y));
        var got = h.Download<float>(y, 128);
        for (int i = 0; i < 128; i++) Assert.That(got[i], Is.EqualTo((float)(i / 64 * 64 + 63 - i % 64)));
    }

    [Test]
    public void MissingBarrierIsReportedAsARace()
    {
        var (h, x, y) = Setup(64);
        string ptx = Reverse.Replace("BARRIER", "");
        var ex = Assert.Throws<PtxRaceException>(() => h.Run(ptx, "reverse", new Dim3(1), new Dim3(64), 0, KernelArg.Ptr(x), KernelArg.Ptr(y)));
        // Warps run in a seeded order. If warp 0 runs first it reads buf[63..32] (unwritten), and warp 1's first
        // store, thread 32 writing buf[32], conflicts with thread 31's read of it; if warp 1 runs first, thread 0's
        // store of buf[0] conflicts with thread 63's read.
        Assert.That(ex!.Kernel, Is.EqualTo("reverse"));
        Assert.That(ex.Message, Does.Contain("Shared-memory race"));
        Assert.That(ex.Message, Does.Contain("no bar.sync between"));
        Assert.That(ex.Instruction, Does.StartWith("st.shared.f32"));
        bool warp0First = ex.Thread == new Dim3(32, 0, 0);
        Assert.That(ex.Thread, Is.EqualTo(warp0First ? new Dim3(32, 0, 0) : new Dim3(0, 0, 0)));
        Assert.That(ex.Message, Does.Contain(warp0First ? "thread (31,0,0) (warp 0) read" : "thread (63,0,0) (warp 1) read"));
    }

    [Test]
    public void WriteByWarpZeroReadByWarpOneWithoutBarrierIsARace_AndWithBarrierIsNot()
    {
        const string ptx = Harness.Header + """
            .shared .align 4 .u32 flag[1];
            .visible .entry k(.param .u64 p_out)
            {
                .reg .pred %p<3>;
                .reg .b32 %r<8>;
                .reg .b64 %rd<4>;
                ld.param.u64 %rd1, [p_out];
                mov.u32 %r1, %tid.x;
                setp.eq.u32 %p1, %r1, 0;
                setp.eq.u32 %p2, %r1, 32;
                @%p1 st.shared.u32 [flag], 42;
                BARRIER
                @!%p2 bra $END;
                ld.shared.u32 %r2, [flag];
                st.global.u32 [%rd1], %r2;
            $END:
                ret;
            }
            """;
        var h = new Harness();
        ulong o = h.Alloc<uint>(1);
        var ex = Assert.Throws<PtxRaceException>(() => h.Run(ptx.Replace("BARRIER", ""), "k", new Dim3(1), new Dim3(64), 0, KernelArg.Ptr(o)));
        // Whichever warp runs second is reported (warps run in a seeded order): warp 1 reading what warp 0 wrote,
        // or warp 0 writing what warp 1 read.
        if (ex!.Thread == new Dim3(32, 0, 0))
        {
            Assert.That(ex.Line, Is.EqualTo(17));
            Assert.That(ex.Message, Does.Contain("(warp 1) reads").And.Contain("thread (0,0,0) (warp 0) wrote at line 14"));
        }
        else
        {
            Assert.That(ex.Thread, Is.EqualTo(new Dim3(0, 0, 0)));
            Assert.That(ex.Line, Is.EqualTo(14));
            Assert.That(ex.Message, Does.Contain("(warp 0) writes").And.Contain("thread (32,0,0) (warp 1) read at line 17"));
        }

        h.Run(ptx.Replace("BARRIER", "bar.sync 0;"), "k", new Dim3(1), new Dim3(64), 0, KernelArg.Ptr(o));
        Assert.That(h.Download<uint>(o, 1)[0], Is.EqualTo(42u));
    }

    [Test]
    public void ThreadsOfOneWarpDoNotRace()
    {
        // Lane 0 writes, lane 5 of the same warp reads without a barrier: not reported (warp-synchronous code).
        var got = new Harness().RunElementwise("""
            setp.eq.u32 %p1, %r0, 0;
            @%p1 st.shared.u32 [sh], 7;
            ld.shared.u32 %r3, [sh];
            """, new uint[32], new uint[32]);
        Assert.That(got, Is.All.EqualTo(7u));
    }

    [Test]
    public void DynamicSharedMemoryFollowsTheStaticPart()
    {
        const string ptx = Harness.Header + """
            .extern .shared .align 16 .b8 dyn[];
            .visible .entry k(.param .u64 p_out, .param .u32 p_n)
            {
                .reg .pred %p<2>;
                .reg .b32 %r<12>;
                .reg .b64 %rd<6>;
                .shared .align 4 .b8 stat[20];
                ld.param.u64 %rd1, [p_out];
                ld.param.u32 %r1, [p_n];
                mov.u32 %r2, %tid.x;
                mov.u32 %r3, dyn;
                mov.u32 %r4, stat;
                shl.b32 %r5, %r2, 2;
                add.u32 %r6, %r3, %r5;
                mul.lo.u32 %r7, %r2, %r2;
                st.shared.u32 [%r6], %r7;
                bar.sync 0;
                sub.u32 %r8, %r1, 1;
                sub.u32 %r8, %r8, %r2;
                shl.b32 %r8, %r8, 2;
                add.u32 %r8, %r3, %r8;
                ld.shared.u32 %r9, [%r8];
                mul.wide.u32 %rd2, %r2, 8;
                add.s64 %rd3, %rd1, %rd2;
                st.global.v2.u32 [%rd3], {%r9, %r3};
                ret;
            }
            """;
        var h = new Harness();
        ulong o = h.Alloc<uint>(2 * 96);
        var s = h.Run(ptx, "k", new Dim3(1), new Dim3(96), 96 * 4, KernelArg.Ptr(o), KernelArg.U32(96));
        var got = h.Download<uint>(o, 2 * 96);
        for (uint t = 0; t < 96; t++)
        {
            Assert.That(got[2 * t], Is.EqualTo((95 - t) * (95 - t)));
            Assert.That(got[2 * t + 1], Is.EqualTo(32u), "dynamic shared starts at the 16-aligned end of the 20 static bytes");
        }
        Assert.That(s.SharedBytesPerBlock, Is.EqualTo(32 + 96 * 4));

        // One element past the dynamic allocation is out of bounds.
        var ex = Assert.Throws<PtxMemoryViolationException>(() =>
            h.Run(ptx, "k", new Dim3(1), new Dim3(96), 95 * 4, KernelArg.Ptr(o), KernelArg.U32(96)));
        Assert.That(ex!.Message, Does.Contain("Out-of-bounds shared store"));
        Assert.That(ex.Thread, Is.EqualTo(new Dim3(95, 0, 0)));
    }

    [Test]
    public void BarrierInsideABranchOnlySomeWarpsTakeDeadlocks()
    {
        const string ptx = Harness.Header + """
            .visible .entry k()
            {
                .reg .pred %p<2>;
                .reg .b32 %r<4>;
                mov.u32 %r1, %tid.x;
                setp.lt.u32 %p1, %r1, 32;
                @!%p1 bra $SKIP;
                bar.sync 0;
            $SKIP:
                bar.sync 0;
                ret;
            }
            """;
        var ex = Assert.Throws<PtxDeadlockException>(() => new Harness().Run(ptx, "k", new Dim3(1), new Dim3(96), 0));
        Assert.That(ex!.Message, Does.Contain("32 thread(s) wait at line 11").And.Contain("64 thread(s) wait at line 13"));
        Assert.That(ex.Kernel, Is.EqualTo("k"));
    }

    [Test]
    public void ThreadsThatExitDoNotBlockABarrier()
    {
        const string ptx = Harness.Header + """
            .visible .entry k(.param .u64 p_out)
            {
                .reg .pred %p<2>;
                .reg .b32 %r<4>;
                .reg .b64 %rd<4>;
                .shared .align 4 .u32 s[1];
                ld.param.u64 %rd1, [p_out];
                mov.u32 %r1, %tid.x;
                setp.ge.u32 %p1, %r1, 40;
                @%p1 exit;
                setp.eq.u32 %p1, %r1, 0;
                @%p1 st.shared.u32 [s], 5;
                bar.sync 0;
                ld.shared.u32 %r2, [s];
                mul.wide.u32 %rd2, %r1, 4;
                add.s64 %rd3, %rd1, %rd2;
                st.global.u32 [%rd3], %r2;
                ret;
            }
            """;
        var h = new Harness();
        ulong o = h.Alloc<uint>(40);
        h.Run(ptx, "k", new Dim3(1), new Dim3(128), 0, KernelArg.Ptr(o));
        Assert.That(h.Download<uint>(o, 40), Is.All.EqualTo(5u));
    }
}
