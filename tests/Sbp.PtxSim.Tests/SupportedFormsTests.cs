using Sbp.PtxSim.Tests.Support;

namespace Sbp.PtxSim.Tests;

/// <summary>Every instruction form listed as supported in kernels/Sbp.PtxSim/README.md parses and runs.</summary>
public class SupportedFormsTests
{
    private const string Body = """
        add.s32 %r1, %r2, %r3;        add.u32 %r1, %r2, 1;        add.sat.s32 %r1, %r2, %r3;    add.s64 %rd1, %rd2, -8;
        sub.u64 %rd1, %rd2, %rd3;     mul.lo.u64 %rd1, %rd2, 3;   mul.hi.s64 %rd1, %rd2, %rd3;  mul.wide.s32 %rd1, %r2, %r3;
        mad.lo.u32 %r1, %r2, %r3, %r4; mad.hi.u32 %r1, %r2, %r3, %r4; mad.wide.u32 %rd1, %r2, %r3, %rd2; mad.lo.s64 %rd1, %rd2, %rd3, %rd4;
        div.s64 %rd1, %rd2, 3;        rem.u64 %rd1, %rd2, 7;      min.s64 %rd1, %rd2, %rd3;     max.u64 %rd1, %rd2, %rd3;
        neg.s64 %rd1, %rd2;           abs.s64 %rd1, %rd2;         and.b64 %rd1, %rd2, %rd3;     or.b64 %rd1, %rd2, 1;
        xor.b64 %rd1, %rd2, %rd3;     not.b64 %rd1, %rd2;         shl.b64 %rd1, %rd2, 3;        shr.s64 %rd1, %rd2, %r1;
        popc.b64 %r1, %rd2;           clz.b64 %r1, %rd2;          brev.b64 %rd1, %rd2;
        sub.f32 %f1, %f2, %f3;        mul.rn.ftz.f32 %f1, %f2, %f3; mad.f32 %f1, %f2, %f3, %f4; fma.rn.ftz.sat.f32 %f1, %f2, %f3, %f4;
        div.full.f32 %f1, %f2, %f3;   div.approx.ftz.f32 %f1, %f2, %f3; rcp.approx.ftz.f32 %f1, %f2; sqrt.approx.f32 %f1, %f2;
        rsqrt.approx.ftz.f32 %f1, %f2; ex2.approx.f32 %f1, %f2;   lg2.approx.ftz.f32 %f1, %f2;  sin.approx.ftz.f32 %f1, %f2;
        cos.approx.f32 %f1, %f2;      tanh.approx.f32 %f1, %f2;   min.ftz.f32 %f1, %f2, %f3;    max.f32 %f1, %f2, 0f00000000;
        neg.ftz.f32 %f1, %f2;         abs.ftz.f32 %f1, %f2;
        setp.ls.u32 %p1, %r1, %r2;    setp.hi.u64 %p1, %rd1, %rd2; setp.num.f32 %p1, %f1, %f2;  setp.nan.f32 %p1, %f1, %f2;
        setp.geu.ftz.f32 %p1|%p2, %f1, %f2; setp.eq.xor.b32 %p1, %r1, %r2, %p2; setp.ne.b64 %p1, %rd1, 0;
        selp.f32 %f1, %f2, %f3, %p1;  selp.b64 %rd1, %rd2, %rd3, !%p1; xor.pred %p1, %p2, %p3;
        mov.pred %p1, %p2;            mov.b16 %rs1, 7;            mov.u64 %rd1, %rd2;           mov.b32 %r1, %f1;
        mov.u32 %r1, s;               mov.u64 %rd1, s;            mov.u32 %r1, %lanemask_lt;    mov.u32 %r1, WARP_SZ;
        mov.b32 {%rs1, %rs2}, %r1;    mov.b32 %r1, {%rs1, %rs2};
        cvt.u16.u32 %rs1, %r1;        cvt.s64.s16 %rd1, %rs1;     cvt.rzi.u64.f32 %rd1, %f1;    cvt.rn.f32.s64 %f1, %rd1;
        cvt.rp.f32.u64 %f1, %rd1;     cvt.ftz.sat.f32.f32 %f1, %f2; cvt.rpi.ftz.s32.f32 %r1, %f1;
        cvta.global.u64 %rd1, %rd2;   cvta.to.global.u64 %rd1, %rd2;
        mov.b64 %rd1, pm;             ld.param.u32 %r1, [%rd1+4]; ld.param.s8 %r1, [pm+3];    ld.param.u64 %rd1, [pn];
        ld.shared::cta.v2.f32 {%f1, %f2}, [s+8]; st.shared.v2.b32 [s], {%r1, %r2}; ld.volatile.shared.u16 %rs1, [s+2];
        atom.shared.exch.b64 %rd1, [s], %rd2; atom.relaxed.gpu.shared.cas.b64 %rd1, [s+8], %rd2, %rd3; red.shared.xor.b32 [s], %r1;
        atom.shared.max.u64 %rd1, [s+16], %rd2; atom.shared.min.s64 %rd1, [s+24], %rd2; atom.shared.add.u64 %rd1, [s], 1;
        red.shared.and.b64 [s+8], %rd1; red.shared.or.b32 [s+4], 1; red.shared.min.u32 [s], %r1; red.shared.inc.u32 [s], 9;
        vote.sync.uni.pred %p1, %p2, -1; membar.cta; membar.gl; fence.sc.gpu; fence.acq_rel.cta;
        bar.cta.sync 0; barrier.sync.aligned 0; bar.sync 1, 32;
        """;

    [Test]
    public void EveryDocumentedFormParsesAndRuns()
    {
        string ptx = Harness.Header + $$"""
            .visible .entry k(.param .align 8 .b8 pm[12], .param .u64 pn)
            {
                .reg .pred %p<4>;
                .reg .b16 %rs<3>;
                .reg .b32 %r<5>;
                .reg .b64 %rd<5>;
                .reg .f32 %f<5>;
                .shared .align 16 .b8 s[64];
                {{Body}}
                ret;
            }
            """;
        var module = PtxModule.Parse(ptx);
        int statements = Body.Split(';').Count(x => !string.IsNullOrWhiteSpace(x));
        Assert.That(module.InstructionKinds("k"), Has.Count.GreaterThan(statements * 8 / 10));
        var s = new PtxSimulator(new SimMemory()).Launch(module, "k", new Dim3(1), new Dim3(32), 0, KernelArg.Bytes(new byte[12]), KernelArg.U64(0));
        Assert.That(s.WarpInstructions, Is.EqualTo(statements + 1L));
    }
}
