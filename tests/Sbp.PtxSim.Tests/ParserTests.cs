using Sbp.PtxSim.Tests.Support;

namespace Sbp.PtxSim.Tests;

/// <summary>Module structure, accepted directives, and clear errors for malformed or unsupported PTX.</summary>
public class ParserTests
{
    [Test]
    public void AcceptsHeaderDirectivesCommentsAndPerformanceHints()
    {
        const string ptx = """
            //
            // Generated-looking header
            //
            .version 7.8
            .target sm_80
            .address_size 64
            .file 1 "kernel.cu"

            /* a block
               comment */
            .visible .entry first(
                .param .u64 first_p0,
                .param .f32 first_p1
            )
            .maxntid 256, 1, 1
            .minnctapersm 2
            {
                .reg .pred %p<2>;
                .reg .b32 %r<4>, %extra;
                .pragma "nounroll";
                .loc 1 10 3
                mov.u32 %r1, %tid.x;   // trailing comment
                {
                    .reg .b32 %r1;     // shadows the outer %r1
                    mov.u32 %r1, 5;
                }
                ret;
            }

            .entry second()
            .reqntid 32
            {
                exit;
            }
            """;
        var m = PtxModule.Parse(ptx);
        Assert.That(m.EntryNames, Is.EqualTo(new[] { "first", "second" }));
        var sim = new PtxSimulator(new SimMemory());
        sim.Launch(m, "first", new Dim3(1), new Dim3(64), 0, KernelArg.Ptr(0), KernelArg.F32(1));
        Assert.Throws<ArgumentException>(() => sim.Launch(m, "first", new Dim3(1), new Dim3(512), 0, KernelArg.Ptr(0), KernelArg.F32(1)));
        Assert.Throws<ArgumentException>(() => sim.Launch(m, "second", new Dim3(1), new Dim3(64), 0));
    }

    [Test]
    public void UnsupportedInstructionIsRefusedAtParseTimeWithItsLine()
    {
        string ptx = Harness.Header + """
            .visible .entry k(.param .u64 p)
            {
                .reg .b32 %r<4>;
                mov.u32 %r1, 1;
                prmt.b32 %r2, %r1, %r1, 0x3210;
                ret;
            }
            """;
        var ex = Assert.Throws<PtxUnsupportedInstructionException>(() => PtxModule.Parse(ptx, "bad.ptx"));
        Assert.That(ex!.Message, Does.Contain("'prmt.b32' is not implemented"));
        Assert.That(ex.Line, Is.EqualTo(8));
        Assert.That(ex.Kernel, Is.EqualTo("k"));
        Assert.That(ex.Instruction, Is.EqualTo("prmt.b32 %r2, %r1, %r1, 0x3210;"));
        Assert.That(ex.Message, Does.Contain("bad.ptx:8"));
    }

    [TestCase("add.rz.f32 %f1, %f1, %f1;", "modifier(s) .rz")]
    [TestCase("add.f64 %f1, %f1, %f1;", ".f64 is not supported")]
    [TestCase("ld.f32 %f1, [%rd1];", "generic-address ld")]
    [TestCase("ld.local.f32 %f1, [%rd1];", "ld.local")]
    [TestCase("shfl.bfly.b32 %r1, %r1, 1, 31;", "shfl without .sync")]
    [TestCase("call foo;", "'call' is not implemented")]
    [TestCase("mov.u32 %r1, %clock;", "special register %clock")]
    [TestCase("bar.arrive 0, 64;", "bar.arrive")]
    [TestCase("atom.add.f32 %f1, [%rd1], %f1;", "without .global or .shared")]
    public void UnsupportedFormsAreRefused(string instruction, string message)
    {
        string ptx = Harness.Header + $$"""
            .visible .entry k()
            {
                .reg .b32 %r<4>;
                .reg .b64 %rd<4>;
                .reg .f32 %f<4>;
                {{instruction}}
                ret;
            }
            """;
        var ex = Assert.Throws<PtxUnsupportedInstructionException>(() => PtxModule.Parse(ptx));
        Assert.That(ex!.Message, Does.Contain(message));
        Assert.That(ex.Line, Is.EqualTo(9));
    }

    [TestCase("mov.u32 %r9, 1;", "register %r9 is not declared")]
    [TestCase("bra $NOWHERE;", "unknown branch target")]
    [TestCase("add.s32 %r1, %r1;", "expected 3 operand(s)")]
    [TestCase("setp.lt.s32 %r1, %r1, %r2;", "must be a .pred register")]
    [TestCase("cvt.s32.f32 %r1, %f1;", "integer rounding modifier")]
    [TestCase("mov.u32 %r1, 1", "expected ';'")]
    [TestCase("ld.param.u32 %r1, [nothing];", "unknown address base")]
    public void MalformedPtxGivesAParseErrorWithTheLine(string instruction, string message)
    {
        string ptx = Harness.Header + $$"""
            .visible .entry k()
            {
                .reg .b32 %r<4>;
                .reg .f32 %f<4>;
                {{instruction}}
                ret;
            }
            """;
        var ex = Assert.Throws<PtxParseException>(() => PtxModule.Parse(ptx, "m.ptx"));
        Assert.That(ex!.Message, Does.Contain(message));
        Assert.That(ex.Line, Is.AnyOf(8, 9));
        Assert.That(ex.SourceName, Is.EqualTo("m.ptx"));
    }

    [Test]
    public void UnknownDirectiveIsAnError()
    {
        var ex = Assert.Throws<PtxParseException>(() => PtxModule.Parse(Harness.Header + ".section .debug_info { }\n"));
        Assert.That(ex!.Message, Does.Contain("unknown or unsupported directive '.section'"));
        Assert.That(ex.Line, Is.EqualTo(4));
    }

    [Test]
    public void DeviceFunctionsAreRefused()
    {
        Assert.Throws<PtxUnsupportedInstructionException>(() => PtxModule.Parse(Harness.Header + ".func f() { ret; }\n"));
    }

    [Test]
    public void ParamsAreLaidOutWithNaturalAlignment()
    {
        // u32, u64, f32, s64: offsets 0, 8, 16, 24.
        const string ptx = Harness.Header + """
            .visible .entry k(.param .u32 a, .param .u64 b, .param .f32 c, .param .s64 d, .param .u64 out)
            {
                .reg .b32 %r<4>;
                .reg .b64 %rd<8>;
                .reg .f32 %f<2>;
                ld.param.u32 %r1, [a];
                ld.param.u64 %rd1, [b];
                ld.param.f32 %f1, [c];
                ld.param.s64 %rd2, [d];
                ld.param.u64 %rd3, [out];
                ld.param.u32 %r2, [b+4];
                cvt.u64.u32 %rd4, %r1;
                add.s64 %rd1, %rd1, %rd4;
                add.s64 %rd1, %rd1, %rd2;
                cvt.rzi.s64.f32 %rd5, %f1;
                add.s64 %rd1, %rd1, %rd5;
                st.global.u64 [%rd3], %rd1;
                st.global.u32 [%rd3+8], %r2;
                ret;
            }
            """;
        var h = new Harness();
        ulong o = h.Alloc<ulong>(2);
        h.Run(ptx, "k", new Dim3(1), new Dim3(1), 0, KernelArg.U32(7), KernelArg.U64(0x5_0000_0000), KernelArg.F32(-2.5f), KernelArg.S64(-100), KernelArg.Ptr(o));
        var r = h.Download<ulong>(o, 2);
        Assert.That(r[0], Is.EqualTo(0x5_0000_0000UL + 7 - 100 - 2));
        Assert.That((uint)r[1], Is.EqualTo(5u));
    }
}
