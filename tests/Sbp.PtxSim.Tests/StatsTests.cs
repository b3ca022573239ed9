using Sbp.PtxSim.Tests.Support;

namespace Sbp.PtxSim.Tests;

/// <summary>LaunchStats: instruction counts, bytes, coalescing (sectors per request) and shared bank conflicts.</summary>
public class StatsTests
{
    /// <summary>Each thread loads x[tid * STRIDE] and stores it to y[tid].</summary>
    private const string Strided = Harness.Header + """
        .visible .entry k(.param .u64 p_x, .param .u64 p_y, .param .u32 p_stride)
        {
            .reg .b32 %r<8>;
            .reg .b64 %rd<8>;
            .reg .f32 %f<2>;
            ld.param.u64 %rd1, [p_x];
            ld.param.u64 %rd2, [p_y];
            ld.param.u32 %r1, [p_stride];
            mov.u32 %r2, %tid.x;
            mul.lo.u32 %r3, %r2, %r1;
            mul.wide.u32 %rd3, %r3, 4;
            add.s64 %rd4, %rd1, %rd3;
            ld.global.f32 %f1, [%rd4];
            mul.wide.u32 %rd5, %r2, 4;
            add.s64 %rd6, %rd2, %rd5;
            st.global.f32 [%rd6], %f1;
            ret;
        }
        """;

    private static LaunchStats RunStrided(uint stride)
    {
        var h = new Harness();
        ulong x = h.Alloc<float>((int)(128 * stride)), y = h.Alloc<float>(128);
        return h.Run(Strided, "k", new Dim3(1), new Dim3(128), 0, KernelArg.Ptr(x), KernelArg.Ptr(y), KernelArg.U32(stride));
    }

    [Test]
    public void CoalescedLoadsTouchFourSectorsPerRequest()
    {
        var s = RunStrided(1);
        Assert.That(s.GlobalRequests, Is.EqualTo(8));          // 4 warps x (1 load + 1 store)
        Assert.That(s.GlobalTransactions, Is.EqualTo(8 * 4));
        Assert.That(s.TransactionsPerRequest, Is.EqualTo(4.0));
        Assert.That(s.BytesLoaded, Is.EqualTo(128 * 4));
        Assert.That(s.BytesStored, Is.EqualTo(128 * 4));
    }

    [Test]
    public void StridedLoadsTouchThirtyTwoSectorsPerRequest()
    {
        var s = RunStrided(32);
        Assert.That(s.GlobalRequests, Is.EqualTo(8));
        Assert.That(s.GlobalTransactions, Is.EqualTo(4 * 32 + 4 * 4)); // loads scattered, stores coalesced
    }

    [Test]
    public void InstructionCounts()
    {
        var s = RunStrided(1);
        Assert.That(s.Instructions, Is.EqualTo(128 * 12));
        Assert.That(s.WarpInstructions, Is.EqualTo(4 * 12));
        Assert.That(s.InstructionsByKind["ld.global.f32"], Is.EqualTo(128));
        Assert.That(s.InstructionsByKind["mul.wide.u32"], Is.EqualTo(256));
        Assert.That(s.InstructionsByKind.Values.Sum(), Is.EqualTo(s.Instructions));
        Assert.That(s.ToString(), Does.Contain("ld.global.f32").And.Contain("4.00 per request"));
    }

    [Test]
    public void PredicatedOffLanesAreNotCounted()
    {
        var s = new Harness().RunElementwise("setp.lt.u32 %p1, %r0, 10;\n mov.u32 %r3, 0;\n @%p1 add.u32 %r3, %r1, 1;", new uint[32], new uint[32]);
        Assert.That(s, Has.Length.EqualTo(32));
        var h = new Harness();
        ulong a = h.Upload(new uint[32]), o = h.Alloc<uint>(32);
        var st = h.Run(Harness.Elementwise("setp.lt.u32 %p1, %r0, 10;\n mov.u32 %r3, 0;\n @%p1 add.u32 %r3, %r1, 1;"), "k", new Dim3(1), new Dim3(32), 0,
            KernelArg.Ptr(o), KernelArg.Ptr(a), KernelArg.Ptr(a));
        Assert.That(st.InstructionsByKind["add.u32"], Is.EqualTo(10));
    }

    [TestCase(1, 0)]
    [TestCase(2, 1)]
    [TestCase(32, 31)]
    [TestCase(33, 0)]
    public void SharedBankConflictsPerStride(int strideWords, int conflictsPerRequest)
    {
        string ptx = Harness.Header + $$"""
            .visible .entry k()
            {
                .reg .b32 %r<6>;
                .shared .align 4 .f32 s[{{32 * strideWords}}];
                mov.u32 %r1, %tid.x;
                mul.lo.u32 %r2, %r1, {{strideWords * 4}};
                mov.u32 %r3, s;
                add.u32 %r3, %r3, %r2;
                st.shared.u32 [%r3], %r1;
                ret;
            }
            """;
        var st = new Harness().Run(ptx, "k", new Dim3(1), new Dim3(32), 0);
        Assert.That(st.SharedRequests, Is.EqualTo(1));
        Assert.That(st.SharedBankConflicts, Is.EqualTo(conflictsPerRequest));
    }

    [Test]
    public void SharedBroadcastAndVectorAccessesHaveNoConflicts()
    {
        const string ptx = Harness.Header + """
            .visible .entry k()
            {
                .reg .b32 %r<6>;
                .reg .f32 %f<6>;
                .shared .align 16 .f32 s[128];
                mov.u32 %r1, %tid.x;
                mov.u32 %r3, s;
                shl.b32 %r2, %r1, 4;
                add.u32 %r4, %r3, %r2;
                st.shared.v4.f32 [%r4], {%f1, %f1, %f1, %f1};
                bar.sync 0;
                ld.shared.f32 %f2, [s+8];
                ret;
            }
            """;
        var st = new Harness().Run(ptx, "k", new Dim3(1), new Dim3(32), 0);
        Assert.That(st.SharedRequests, Is.EqualTo(2));
        Assert.That(st.SharedBankConflicts, Is.EqualTo(0));
    }

    [Test]
    public void LargeLaunchRuns()
    {
        // 64K threads x ~16 instructions (a quick sanity run of the interpreter's throughput; no timing assert).
        var h = new Harness();
        const int n = 65536;
        ulong x = h.Upload(Enumerable.Range(0, n).Select(i => (float)i).ToArray()), y = h.Alloc<float>(n);
        string ptx = Strided.Replace("mov.u32 %r2, %tid.x;", "mov.u32 %r2, %tid.x;\n mov.u32 %r5, %ctaid.x;\n mov.u32 %r6, %ntid.x;\n mad.lo.u32 %r2, %r5, %r6, %r2;");
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var s = h.Run(ptx, "k", new Dim3(n / 256), new Dim3(256), 0, KernelArg.Ptr(x), KernelArg.Ptr(y), KernelArg.U32(1));
        TestContext.Out.WriteLine($"{s.Instructions:N0} thread-instructions in {sw.Elapsed.TotalMilliseconds:F0} ms");
        Assert.That(h.Download<float>(y, n), Is.EqualTo(Enumerable.Range(0, n).Select(i => (float)i)));
    }
}
