using Sbp.PtxSim.Tests.Support;

namespace Sbp.PtxSim.Tests;

/// <summary>atom / red on global and shared memory, executed lane by lane in a seeded order (OrderTests).</summary>
public class AtomicTests
{
    private const string Kernel = Harness.Header + """
        .visible .entry k(.param .u64 p_counter, .param .u64 p_old, .param .u64 p_fsum)
        {
            .reg .b32 %r<16>;
            .reg .b64 %rd<8>;
            .reg .f32 %f<4>;
            ld.param.u64 %rd1, [p_counter];
            ld.param.u64 %rd2, [p_old];
            ld.param.u64 %rd3, [p_fsum];
            mov.u32 %r1, %ctaid.x;
            mov.u32 %r2, %ntid.x;
            mov.u32 %r3, %tid.x;
            mad.lo.u32 %r4, %r1, %r2, %r3;
            atom.global.add.u32 %r5, [%rd1], 1;            // ticket
            mul.wide.u32 %rd4, %r4, 4;
            add.s64 %rd5, %rd2, %rd4;
            st.global.u32 [%rd5], %r5;
            cvt.rn.f32.u32 %f1, %r4;
            red.global.add.f32 [%rd3], %f1;
            atom.global.max.s32 %r6, [%rd1+4], %r4;
            atom.global.exch.b32 %r7, [%rd1+8], %r4;
            atom.global.cas.b32 %r8, [%rd1+12], %r4, 1000;  // only the thread whose id equals the current value swaps
            ret;
        }
        """;

    [Test]
    public void GlobalAtomicsAreCompleteInAnyOrder()
    {
        var h = new Harness();
        ulong counter = h.Upload(new int[] { 0, -1, 0, 5 }), old = h.Alloc<uint>(96), fsum = h.Upload(new float[] { 0 });
        var s = h.Run(Kernel, "k", new Dim3(3), new Dim3(32), 0, KernelArg.Ptr(counter), KernelArg.Ptr(old), KernelArg.Ptr(fsum));
        var c = h.Download<int>(counter, 4);
        Assert.That(c[0], Is.EqualTo(96));                       // every ticket taken once
        Assert.That(c[1], Is.EqualTo(95));                       // max of the thread ids
        Assert.That(c[2], Is.InRange(0, 95));                    // the last exchange wins: any thread's, in a seeded order
        Assert.That(c[3], Is.EqualTo(1000));                     // thread 5 saw 5 and swapped
        var tickets = h.Download<uint>(old, 96);
        Assert.That(tickets, Is.EquivalentTo(Enumerable.Range(0, 96).Select(i => (uint)i)), "every ticket handed out once");
        Assert.That(tickets, Is.Not.EqualTo(Enumerable.Range(0, 96).Select(i => (uint)i)), "not in lane and block order");
        Assert.That(h.Download<float>(fsum, 1)[0], Is.EqualTo(95f * 96f / 2f));   // integers below 2^24: exact in any order
        Assert.That(s.InstructionsByKind["red.global.add.f32"], Is.EqualTo(96));
    }

    [Test]
    public void SharedAtomicsHistogram()
    {
        var h = new Harness();
        var data = Enumerable.Range(0, 256).Select(i => (uint)(i * 7 % 10)).ToArray();
        ulong pin = h.Upload(data), pout = h.Alloc<uint>(10);
        const string ptx = Harness.Header + """
            .visible .entry hist(.param .u64 p_in, .param .u64 p_out)
            {
                .reg .pred %p<2>;
                .reg .b32 %r<12>;
                .reg .b64 %rd<8>;
                .shared .align 4 .u32 bins[10];
                ld.param.u64 %rd1, [p_in];
                ld.param.u64 %rd2, [p_out];
                mov.u32 %r1, %tid.x;
                mov.u32 %r9, bins;
                setp.lt.u32 %p1, %r1, 10;
                shl.b32 %r2, %r1, 2;
                add.u32 %r3, %r9, %r2;
                @%p1 st.shared.u32 [%r3], 0;
                bar.sync 0;
                mul.wide.u32 %rd3, %r1, 4;
                add.s64 %rd4, %rd1, %rd3;
                ld.global.u32 %r4, [%rd4];
                shl.b32 %r5, %r4, 2;
                add.u32 %r5, %r9, %r5;
                atom.shared.add.u32 %r6, [%r5], 1;
                bar.sync 0;
                @!%p1 bra $END;
                ld.shared.u32 %r7, [%r3];
                add.s64 %rd5, %rd2, %rd3;
                st.global.u32 [%rd5], %r7;
            $END:
                ret;
            }
            """;
        h.Run(ptx, "hist", new Dim3(1), new Dim3(256), 0, KernelArg.Ptr(pin), KernelArg.Ptr(pout));
        var expected = new uint[10];
        foreach (var d in data) expected[d]++;
        Assert.That(h.Download<uint>(pout, 10), Is.EqualTo(expected));
    }
}
