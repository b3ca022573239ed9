using Sbp.PtxSim.Tests.Support;

namespace Sbp.PtxSim.Tests;

/// <summary>Byte-array kernel parameters (structs passed by value): layout, mov of a param address, ld.param through a
/// register, launch binding and the errors for each.</summary>
public class ParamTests
{
    /// <summary>y[tid] = {meta[tid % rank], meta[tid % rank + 32], meta[2]} as u32, reading meta three ways.</summary>
    private const string MetaKernel = Harness.Header + """
        .visible .entry k(
            .param .u64 p_y,
            .param .u32 p_rank,
            .param .align 4 .b8 p_meta[256]
        )
        {
            .reg .b32 %r<8>;
            .reg .b64 %rd<8>;
            ld.param.u64 %rd1, [p_y];
            ld.param.u32 %r1, [p_rank];
            cvta.to.global.u64 %rd1, %rd1;
            mov.u32 %r2, %tid.x;
            rem.u32 %r2, %r2, %r1;
            mov.u64 %rd2, p_meta;
            mul.wide.u32 %rd3, %r2, 4;
            add.s64 %rd2, %rd2, %rd3;
            ld.param.u32 %r3, [%rd2];
            ld.param.u32 %r4, [%rd2+128];
            ld.param.u32 %r5, [p_meta+8];
            mov.u32 %r6, %tid.x;
            mul.wide.u32 %rd4, %r6, 12;
            add.s64 %rd4, %rd1, %rd4;
            st.global.u32 [%rd4], %r3;
            st.global.u32 [%rd4+4], %r4;
            st.global.u32 [%rd4+8], %r5;
            ret;
        }
        """;

    private static byte[] Meta() => [.. Enumerable.Range(0, 64).SelectMany(i => BitConverter.GetBytes(1000u + (uint)i))];

    [Test]
    public void LanesReadTheirOwnElementsOfAByteArrayParam()
    {
        var h = new Harness();
        ulong y = h.Alloc<uint>(64 * 3);
        h.Run(MetaKernel, "k", new Dim3(1), new Dim3(64), 0, KernelArg.Ptr(y), KernelArg.U32(5), KernelArg.Bytes(Meta()));
        var r = h.Download<uint>(y, 64 * 3);
        for (int t = 0; t < 64; t++)
        {
            uint e = (uint)(t % 5);
            Assert.That(r[3 * t], Is.EqualTo(1000 + e), $"thread {t}: [%rd2]");
            Assert.That(r[3 * t + 1], Is.EqualTo(1032 + e), $"thread {t}: [%rd2+128]");
            Assert.That(r[3 * t + 2], Is.EqualTo(1002u), $"thread {t}: [p_meta+8]");
        }
    }

    [Test]
    public void ParamsFollowingAnOddSizedArrayAreAlignedAndMovGivesTheirOffsets()
    {
        // a[3] at 0, n at 4 (not 3), out at 8; narrow loads through a register extend by their type.
        const string ptx = Harness.Header + """
            .visible .entry k(.param .b8 a[3], .param .u32 n, .param .u64 out)
            {
                .reg .b32 %r<8>;
                .reg .b64 %rd<8>;
                ld.param.u64 %rd1, [out];
                mov.u64 %rd2, a;
                mov.b64 %rd3, n;
                mov.s64 %rd4, out;
                ld.param.u32 %r1, [n];
                ld.param.u32 %r2, [%rd3];
                ld.param.u8 %r3, [%rd2+2];
                ld.param.s8 %r4, [%rd2+1];
                st.global.u64 [%rd1], %rd2;
                st.global.u64 [%rd1+8], %rd3;
                st.global.u64 [%rd1+16], %rd4;
                st.global.v4.u32 [%rd1+32], {%r1, %r2, %r3, %r4};
                ret;
            }
            """;
        var h = new Harness();
        ulong o = h.Alloc<ulong>(6);
        h.Run(ptx, "k", new Dim3(1), new Dim3(1), 0, KernelArg.Bytes([1, 0xFE, 0x7F]), KernelArg.U32(77), KernelArg.Ptr(o));
        var r = h.Download<ulong>(o, 3);
        Assert.That(r, Is.EqualTo(new ulong[] { 0, 4, 8 }));
        Assert.That(h.Download<uint>(o + 32, 4), Is.EqualTo(new uint[] { 77, 77, 0x7F, 0xFFFFFFFE }));
    }

    private const string OneLaneReads = Harness.Header + """
        .visible .entry k(.param .u32 n, .param .align 8 .b8 m[16])
        {
            .reg .b32 %r<4>;
            .reg .b64 %rd<4>;
            mov.u32 %r1, %tid.x;
            mul.wide.u32 %rd1, %r1, 4;
            mov.u64 %rd2, m;
            add.s64 %rd2, %rd2, %rd1;
            ld.param.u32 %r2, [%rd2+OFF];
            ret;
        }
        """;

    [Test]
    public void OutOfRangeRegisterAddressIsReportedWithKernelLaneAndLayout()
    {
        var h = new Harness();
        // m is at 8 (.align 8); lane 4 reads bytes [24, 28) of a 24-byte buffer.
        var ex = Assert.Throws<PtxMemoryViolationException>(() =>
            h.Run(OneLaneReads.Replace("OFF", "0"), "k", new Dim3(1), new Dim3(32), 0, KernelArg.U32(1), KernelArg.Bytes(new byte[16])));
        Assert.That(ex!.Kernel, Is.EqualTo("k"));
        Assert.That(ex.Thread, Is.EqualTo(new Dim3(4, 0, 0)));
        Assert.That(ex.Line, Is.EqualTo(12));
        Assert.That(ex.Message, Does.Contain(
            "Out-of-bounds param load in kernel k: 4 bytes at param address 24 are outside its 24 bytes of parameters (.u32 n at 0, .align 8 .b8 m[16] at 8)"));
        TestContext.Out.WriteLine(ex.Message);

        ex = Assert.Throws<PtxMemoryViolationException>(() =>
            h.Run(OneLaneReads.Replace("OFF", "-12"), "k", new Dim3(1), new Dim3(1), 0, KernelArg.U32(1), KernelArg.Bytes(new byte[16])));
        Assert.That(ex!.Message, Does.Contain("at param address -4"));

        ex = Assert.Throws<PtxMemoryViolationException>(() =>
            h.Run(OneLaneReads.Replace("OFF", "2"), "k", new Dim3(1), new Dim3(1), 0, KernelArg.U32(1), KernelArg.Bytes(new byte[16])));
        Assert.That(ex!.Message, Does.Contain("Misaligned param load: the 4-byte access at 10"));
    }

    [Test]
    public void LaunchBindsBytesOnlyToArrayParamsOfTheirExactSize()
    {
        var h = new Harness();
        var module = PtxModule.Parse(MetaKernel, "meta.ptx");
        ArgumentException Launch(params KernelArg[] args) =>
            Assert.Throws<ArgumentException>(() => h.Sim.Launch(module, "k", new Dim3(1), new Dim3(32), 0, args))!;

        Assert.That(Launch(KernelArg.Ptr(0), KernelArg.U32(1), KernelArg.Bytes(new byte[255])).Message,
            Does.Contain("Launch of k: argument 2 has 255 bytes but parameter '.align 4 .b8 p_meta[256]' takes exactly 256 bytes"));
        Assert.That(Launch(KernelArg.Ptr(0), KernelArg.U32(1), KernelArg.Bytes(new byte[257])).Message, Does.Contain("257 bytes"));
        Assert.That(Launch(KernelArg.Ptr(0), KernelArg.U32(1), KernelArg.U64(0)).Message,
            Does.Contain("argument 2 (64-bit 0x0) does not match array parameter 2 '.align 4 .b8 p_meta[256]' (use KernelArg.Bytes with exactly 256 bytes)"));
        Assert.That(Launch(KernelArg.Ptr(0), KernelArg.Bytes(new byte[4]), KernelArg.Bytes(new byte[256])).Message,
            Does.Contain("argument 1 (bytes[4]) does not match parameter 1 '.u32 p_rank'").And.Contain("KernelArg.Bytes binds only to array parameters"));
        Assert.That(Launch(KernelArg.Ptr(0)).Message,
            Does.Contain("the kernel takes 3 (.u64 p_y, .u32 p_rank, .align 4 .b8 p_meta[256])"));
    }

    [Test]
    public void BytesArgumentIsACopy()
    {
        var data = new byte[] { 1, 2, 3 };
        var a = KernelArg.Bytes(data);
        data[0] = 9;
        Assert.That(a.Data.ToArray(), Is.EqualTo(new byte[] { 1, 2, 3 }));
        Assert.That(a.Kind, Is.EqualTo(KernelArgKind.Bytes));
        Assert.That(a.Size, Is.EqualTo(3));
        Assert.That(a.ToString(), Is.EqualTo("bytes[3]"));
        Assert.That(KernelArg.Bytes(new byte[256].AsSpan()).ToString(), Is.EqualTo("bytes[256]"));
        Assert.That(KernelArg.U32(1).Data.IsEmpty, Is.True);
        Assert.Throws<ArgumentNullException>(() => KernelArg.Bytes((byte[])null!));
    }

    [TestCase(".param .align 3 .b8 x[4]", "power of two")]
    [TestCase(".param .b8 x[]", "needs a size")]
    [TestCase(".param .b8 x[0]", "between 1 and 32764 elements")]
    [TestCase(".param .align 2 .u32 x[2]", ".align 2 is less than the 4-byte size of .u32")]
    [TestCase(".param .align 4 .b8 x[32760], .param .u64 y", "take 32768 bytes, more than CUDA's limit of 32764")]
    public void MalformedParamDeclarationsAreParseErrors(string decl, string message)
    {
        var ex = Assert.Throws<PtxParseException>(() => PtxModule.Parse(Harness.Header + $".visible .entry k({decl}) {{ ret; }}\n"));
        Assert.That(ex!.Message, Does.Contain(message));
        Assert.That(ex.Line, Is.EqualTo(4));
    }

    [TestCase(".param .u64 .ptr.global .align 8 p", "'.ptr.global' in a kernel parameter declaration is not supported")]
    [TestCase(".param .ptr .u64 p", "'.ptr' in a kernel parameter declaration is not supported")]
    [TestCase(".param .u16 p", "kernel parameter type .u16 is not supported")]
    [TestCase(".param .b8 x[2][2]", "multi-dimensional array kernel parameter x")]
    [TestCase(".param .f64 x[2]", "array kernel parameter x of .f64")]
    public void UnsupportedParamDeclarationsAreRefused(string decl, string message)
    {
        var ex = Assert.Throws<PtxUnsupportedInstructionException>(() => PtxModule.Parse(Harness.Header + $".visible .entry k({decl}) {{ ret; }}\n"));
        Assert.That(ex!.Message, Does.Contain(message));
    }

    [TestCase("mov.u32 %r1, m;", "mov.u32 of parameter m: a parameter's address is 64-bit")]
    [TestCase("add.s64 %rd1, m, 4;", "the address of parameter m can only be taken with mov.u64/.b64/.s64")]
    [TestCase("ld.param.v2.u32 {%r1, %r2}, [%rd1];", "vector ld.param")]
    public void ParamAddressUsesOutsideMovAndLdParamAreRefused(string instruction, string message)
    {
        string ptx = Harness.Header + $$"""
            .visible .entry k(.param .align 8 .b8 m[16])
            {
                .reg .b32 %r<4>;
                .reg .b64 %rd<4>;
                {{instruction}}
                ret;
            }
            """;
        var ex = Assert.Throws<PtxUnsupportedInstructionException>(() => PtxModule.Parse(ptx));
        Assert.That(ex!.Message, Does.Contain(message));
        Assert.That(ex.Line, Is.EqualTo(8));
    }
}
