using Sbp.PtxSim.Tests.Support;

namespace Sbp.PtxSim.Tests;

/// <summary>Global-memory checks (bounds, freed memory, alignment), vector loads and stores, and the host API.</summary>
public class MemoryCheckTests
{
    /// <summary>y[i] = x[i] * 2 for i in [0, n): a planted bug reads x[n] when BUG is "1".</summary>
    private const string Scale = Harness.Header + """
        .visible .entry scale(.param .u64 p_x, .param .u64 p_y, .param .u32 p_n)
        {
            .reg .pred %p<2>;
            .reg .b32 %r<8>;
            .reg .b64 %rd<8>;
            .reg .f32 %f<4>;
            ld.param.u64 %rd1, [p_x];
            ld.param.u64 %rd2, [p_y];
            ld.param.u32 %r1, [p_n];
            add.u32 %r1, %r1, BUG;
            mov.u32 %r2, %ctaid.x;
            mov.u32 %r3, %ntid.x;
            mov.u32 %r4, %tid.x;
            mad.lo.s32 %r5, %r2, %r3, %r4;
            setp.ge.u32 %p1, %r5, %r1;
            @%p1 bra $DONE;
            mul.wide.u32 %rd3, %r5, 4;
            add.s64 %rd4, %rd1, %rd3;
            ld.global.f32 %f1, [%rd4];
            add.f32 %f2, %f1, %f1;
            add.s64 %rd5, %rd2, %rd3;
            st.global.f32 [%rd5], %f2;
        $DONE:
            ret;
        }
        """;

    [Test]
    public void CorrectKernelPasses()
    {
        var h = new Harness();
        ulong x = h.Upload(Enumerable.Range(0, 100).Select(i => (float)i).ToArray()), y = h.Alloc<float>(100);
        h.Run(Scale.Replace("BUG", "0"), "scale", new Dim3(4), new Dim3(32), 0, KernelArg.Ptr(x), KernelArg.Ptr(y), KernelArg.U32(100));
        Assert.That(h.Download<float>(y, 100), Is.EqualTo(Enumerable.Range(0, 100).Select(i => 2f * i)));
    }

    [Test]
    public void OnePastTheEndIsReportedWithKernelThreadAndLine()
    {
        var h = new Harness();
        ulong x = h.Upload(new float[100]), y = h.Alloc<float>(101);
        var ex = Assert.Throws<PtxMemoryViolationException>(() =>
            h.Run(Scale.Replace("BUG", "1"), "scale", new Dim3(4), new Dim3(32), 0, KernelArg.Ptr(x), KernelArg.Ptr(y), KernelArg.U32(100)));
        Assert.That(ex!.Kernel, Is.EqualTo("scale"));
        Assert.That(ex.Block, Is.EqualTo(new Dim3(3, 0, 0)));
        Assert.That(ex.Thread, Is.EqualTo(new Dim3(4, 0, 0)));
        Assert.That(ex.Line, Is.EqualTo(22));
        Assert.That(ex.Instruction, Is.EqualTo("ld.global.f32 %f1, [%rd4];"));
        Assert.That(ex.Message, Does.Contain("Out-of-bounds global load: 4 bytes at 0x" + (x + 400).ToString("X")));
        Assert.That(ex.Message, Does.Contain("0 bytes past its end"));
        Assert.That(ex.Message, Does.Contain("test.ptx:22, kernel scale, block (3,0,0), thread (4,0,0)"));
        TestContext.Out.WriteLine(ex.Message);
    }

    [Test]
    public void UseAfterFreeIsReported()
    {
        var h = new Harness();
        ulong x = h.Upload(new float[32]), y = h.Alloc<float>(32);
        h.Memory.Free(x);
        var ex = Assert.Throws<PtxMemoryViolationException>(() =>
            h.Run(Scale.Replace("BUG", "0"), "scale", new Dim3(1), new Dim3(32), 0, KernelArg.Ptr(x), KernelArg.Ptr(y), KernelArg.U32(32)));
        Assert.That(ex!.Message, Does.Contain("freed"));
        Assert.That(ex.Thread, Is.EqualTo(new Dim3(0, 0, 0)));
    }

    [Test]
    public void MisalignedVectorAccessIsReported()
    {
        const string ptx = Harness.Header + """
            .visible .entry k(.param .u64 p_x)
            {
                .reg .b64 %rd<4>;
                .reg .f32 %f<5>;
                ld.param.u64 %rd1, [p_x];
                ld.global.v4.f32 {%f1, %f2, %f3, %f4}, [%rd1+4];
                ret;
            }
            """;
        var h = new Harness();
        ulong x = h.Upload(new float[16]);
        var ex = Assert.Throws<PtxMemoryViolationException>(() => h.Run(ptx, "k", new Dim3(1), new Dim3(1), 0, KernelArg.Ptr(x)));
        Assert.That(ex!.Message, Does.Contain("Misaligned global load").And.Contain("16-byte"));
    }

    [Test]
    public void VectorLoadsAndStores()
    {
        const string ptx = Harness.Header + """
            .visible .entry k(.param .u64 p_x, .param .u64 p_y)
            {
                .reg .b32 %r<4>;
                .reg .b64 %rd<8>;
                .reg .f32 %f<8>;
                ld.param.u64 %rd1, [p_x];
                ld.param.u64 %rd2, [p_y];
                mov.u32 %r1, %tid.x;
                mul.wide.u32 %rd3, %r1, 16;
                add.s64 %rd4, %rd1, %rd3;
                add.s64 %rd5, %rd2, %rd3;
                ld.global.nc.v4.f32 {%f1, %f2, %f3, %f4}, [%rd4];
                st.global.v4.f32 [%rd5], {%f4, %f3, %f2, %f1};
                ld.global.v2.f32 {%f5, _}, [%rd4+8];
                st.global.v2.f32 [%rd5+8], {%f5, 0f40000000};
                ret;
            }
            """;
        var h = new Harness();
        var data = Enumerable.Range(0, 64).Select(i => (float)i).ToArray();
        ulong x = h.Upload(data), y = h.Alloc<float>(64);
        var s = h.Run(ptx, "k", new Dim3(1), new Dim3(16), 0, KernelArg.Ptr(x), KernelArg.Ptr(y));
        var got = h.Download<float>(y, 64);
        for (int t = 0; t < 16; t++)
            Assert.That(got.Skip(4 * t).Take(4), Is.EqualTo(new[] { data[4 * t + 3], data[4 * t + 2], data[4 * t + 2], 2f }));
        Assert.That(s.BytesLoaded, Is.EqualTo(16 * 16 + 16 * 8));
        Assert.That(s.BytesStored, Is.EqualTo(16 * 16 + 16 * 8));
        Assert.That(s.InstructionsByKind["ld.global.nc.v4.f32"], Is.EqualTo(16));
    }

    [Test]
    public void HostApi()
    {
        var m = new SimMemory();
        ulong a = m.Allocate(1000), b = m.Allocate(256), c = m.Allocate(0);
        Assert.That(new[] { a, b, c }, Has.All.Not.EqualTo(0UL));
        Assert.That(new[] { a % 256, b % 256, c % 256 }, Is.All.EqualTo(0UL));
        Assert.That(b, Is.GreaterThanOrEqualTo(a + 1000));
        Assert.That(m.BytesInUse, Is.EqualTo(1256));
        m.Write<int>(a + 8, new[] { 1, 2, 3 });
        var r = new int[4];
        m.Read<int>(a + 4, r);
        Assert.That(r, Is.EqualTo(new[] { -1, 1, 2, 3 }), "fresh memory reads as 0xFF bytes");
        Assert.Throws<ArgumentException>(() => m.Write<byte>(a + 999, new byte[2]));
        Assert.Throws<ArgumentException>(() => m.Read<byte>(b + 256, new byte[1]));
        m.Free(a);
        Assert.Throws<ArgumentException>(() => m.Free(a));
        Assert.Throws<ArgumentException>(() => m.Read<int>(a, r));
        ulong d = m.Allocate(1000);
        Assert.That(d, Is.Not.EqualTo(a), "addresses are never reused");
        Assert.That(m.LiveAllocations, Is.EqualTo(3));
    }

    [Test]
    public void LaunchArgumentsAreChecked()
    {
        var h = new Harness();
        var module = PtxModule.Parse(Scale.Replace("BUG", "0"), "scale.ptx");
        var ex = Assert.Throws<ArgumentException>(() => h.Sim.Launch(module, "scale", new Dim3(1), new Dim3(32), 0, KernelArg.Ptr(1), KernelArg.Ptr(2)));
        Assert.That(ex!.Message, Does.Contain("2 argument(s) given, the kernel takes 3"));
        ex = Assert.Throws<ArgumentException>(() => h.Sim.Launch(module, "scale", new Dim3(1), new Dim3(32), 0, KernelArg.Ptr(1), KernelArg.Ptr(2), KernelArg.F32(1)));
        Assert.That(ex!.Message, Does.Contain("'.u32 p_n'"));
        Assert.Throws<ArgumentException>(() => h.Sim.Launch(module, "nope", new Dim3(1), new Dim3(32), 0));
        Assert.Throws<ArgumentException>(() => h.Sim.Launch(module, "scale", new Dim3(1), new Dim3(2048), 0, KernelArg.Ptr(1), KernelArg.Ptr(2), KernelArg.U32(1)));
    }
}
