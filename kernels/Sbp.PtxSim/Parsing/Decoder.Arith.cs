using Sbp.PtxSim.Execution;
using Sbp.PtxSim.Model;
using static Sbp.PtxSim.Execution.Alu;

namespace Sbp.PtxSim.Parsing;

/// <summary>Integer and .f32 arithmetic, logic, shifts and bit counts.</summary>
internal sealed partial class Decoder
{
    private static readonly PtxType[] Int32Types = [PtxType.B32, PtxType.U32, PtxType.S32];
    private static readonly PtxType[] Int64Types = [PtxType.B64, PtxType.U64, PtxType.S64];

    private void DecodeArith(Instr i, Mods m, List<Operand> ops)
    {
        string op = m.Base;
        var t = Types(m, 1)[0];
        i.T = t;
        if (t == PtxType.F32)
        {
            DecodeFloat(i, m, ops, op);
            return;
        }
        if (t == PtxType.Pred)
        {
            DecodePredLogic(i, ops, op);
            return;
        }
        if (t.Bits() is not (32 or 64))
            throw Unsupported($"'{op}' on .{t.Name()} is not implemented (32- and 64-bit integers and .f32 are)");
        bool w64 = t.Bits() == 64, signed = t.IsSigned(), bits = t is PtxType.B32 or PtxType.B64;
        int nsrc = op switch { "mad" => 3, "neg" or "abs" or "not" or "popc" or "clz" or "brev" => 1, _ => 2 };
        if (op is "fma" or "rcp" or "sqrt" or "rsqrt" or "ex2" or "lg2" or "sin" or "cos" or "tanh")
            throw Unsupported($"'{op}' is only implemented for .f32");

        string? part = null;
        if (op is "mul" or "mad")
        {
            part = m.TakeAny("lo", "hi", "wide");
            if (part is null) throw Parse($"integer {op} needs .lo, .hi or .wide");
            if (bits) throw Parse($"{op}.{part} needs a signed or unsigned type, not .{t.Name()}");
        }
        bool sat = m.Take("sat");
        if (sat && !(t == PtxType.S32 && op is "add" or "sub"))
            throw Unsupported($".sat on integer {op}.{t.Name()} is not implemented (add.sat.s32 / sub.sat.s32 are)");
        if (op is "div" or "rem" or "min" or "max" or "neg" or "abs" && bits)
            throw Parse($"{op} needs a signed or unsigned type, not .{t.Name()}");
        if (op is "neg" or "abs" && !signed) throw Parse($"{op} needs a signed type");
        if (op is "popc" or "clz" or "brev" && !bits) throw Parse($"{op} needs a .b32 or .b64 type");

        Count(ops, nsrc + 1);
        bool wide = part == "wide";
        if (wide && w64) throw Unsupported($"{op}.wide on 64-bit operands is not implemented (mul.wide/mad.wide take 32-bit sources)");
        var dstType = wide ? (signed ? PtxType.S64 : PtxType.U64) : (op is "popc" or "clz" ? PtxType.U32 : t);
        i.D = Dst(ops[0]);
        i.A = Src(ops[1], t);
        if (nsrc >= 2) i.B = Src(ops[2], op is "shl" or "shr" ? PtxType.U32 : t);
        if (nsrc == 3) i.C = Src(ops[3], dstType);

        i.Exec = (op, part, w64, signed) switch
        {
            ("add", _, false, _) => sat ? BinS32<AddSatS32> : Bin32<Add32>,
            ("add", _, true, _) => Bin64<Add64>,
            ("sub", _, false, _) => sat ? BinS32<SubSatS32> : Bin32<Sub32>,
            ("sub", _, true, _) => Bin64<Sub64>,
            ("mul", "lo", false, _) => Bin32<MulLo32>,
            ("mul", "lo", true, _) => Bin64<MulLo64>,
            ("mul", "hi", false, false) => Bin32<MulHiU32>,
            ("mul", "hi", false, true) => BinS32<MulHiS32>,
            ("mul", "hi", true, false) => Bin64<MulHiU64>,
            ("mul", "hi", true, true) => BinS64<MulHiS64>,
            ("mul", "wide", _, false) or ("mad", "wide", _, false) => MulWideU32,
            ("mul", "wide", _, true) or ("mad", "wide", _, true) => MulWideS32,
            ("mad", "lo", false, _) => Tern32<MadLo32>,
            ("mad", "lo", true, _) => Tern64<MadLo64>,
            ("mad", "hi", false, false) => Tern32<MadHiU32>,
            ("mad", "hi", false, true) => TernS32<MadHiS32>,
            ("mad", "hi", true, false) => Tern64<MadHiU64>,
            ("mad", "hi", true, true) => TernS64<MadHiS64>,
            ("div", _, false, false) => Bin32<DivU<uint>>,
            ("div", _, false, true) => BinS32<DivS<int>>,
            ("div", _, true, false) => Bin64<DivU<ulong>>,
            ("div", _, true, true) => BinS64<DivS<long>>,
            ("rem", _, false, false) => Bin32<RemU<uint>>,
            ("rem", _, false, true) => BinS32<RemS<int>>,
            ("rem", _, true, false) => Bin64<RemU<ulong>>,
            ("rem", _, true, true) => BinS64<RemS<long>>,
            ("min", _, false, false) => Bin32<Min<uint>>,
            ("min", _, false, true) => BinS32<Min<int>>,
            ("min", _, true, false) => Bin64<Min<ulong>>,
            ("min", _, true, true) => BinS64<Min<long>>,
            ("max", _, false, false) => Bin32<Max<uint>>,
            ("max", _, false, true) => BinS32<Max<int>>,
            ("max", _, true, false) => Bin64<Max<ulong>>,
            ("max", _, true, true) => BinS64<Max<long>>,
            ("and", _, false, _) => Bin32<And<uint>>,
            ("and", _, true, _) => Bin64<And<ulong>>,
            ("or", _, false, _) => Bin32<Or<uint>>,
            ("or", _, true, _) => Bin64<Or<ulong>>,
            ("xor", _, false, _) => Bin32<Xor<uint>>,
            ("xor", _, true, _) => Bin64<Xor<ulong>>,
            ("not", _, false, _) => Un32<Not32>,
            ("not", _, true, _) => Un64<Not64>,
            ("shl", _, false, _) => Bin32<Shl32>,
            ("shl", _, true, _) => Bin64<Shl64>,
            ("shr", _, false, true) => Bin32<ShrS32>,
            ("shr", _, false, false) => Bin32<ShrU32>,
            ("shr", _, true, true) => Bin64<ShrS64>,
            ("shr", _, true, false) => Bin64<ShrU64>,
            ("neg", _, false, _) => Un32<Neg32>,
            ("neg", _, true, _) => Un64<Neg64>,
            ("abs", _, false, _) => Un32<AbsS32>,
            ("abs", _, true, _) => Un64<AbsS64>,
            ("popc", _, false, _) => Un32<Popc32>,
            ("popc", _, true, _) => Un64<Popc64>,
            ("clz", _, false, _) => Un32<Clz32>,
            ("clz", _, true, _) => Un64<Clz64>,
            ("brev", _, false, _) => Un32<Brev32>,
            ("brev", _, true, _) => Un64<Brev64>,
            _ => throw Unsupported($"'{_cur!.Opcode}' is not implemented"),
        };
    }

    private void DecodePredLogic(Instr i, List<Operand> ops, string op)
    {
        if (op is not ("and" or "or" or "xor" or "not")) throw Unsupported($"'{op}.pred' is not implemented (and/or/xor/not.pred are)");
        Count(ops, op == "not" ? 2 : 3);
        i.D = Dst(ops[0], pred: true);
        i.A = PredSrc(ops[1], out bool notA);
        if (notA) throw Parse("'!' is not allowed on logic operands");
        if (op != "not")
        {
            i.B = PredSrc(ops[2], out bool notB);
            if (notB) throw Parse("'!' is not allowed on logic operands");
        }
        i.Exec = op switch
        {
            "and" => Bin64<And<ulong>>,
            "or" => Bin64<Or<ulong>>,
            "xor" => Bin64<Xor<ulong>>,
            _ => Un64<NotPred>,
        };
    }

    private void DecodeFloat(Instr i, Mods m, List<Operand> ops, string op)
    {
        string? rnd = m.TakeAny("rn");
        string? approx = m.TakeAny("approx", "full");
        i.Ftz = m.Take("ftz");
        i.Sat = m.Take("sat");
        bool needsRn = op is "fma";
        if (needsRn && rnd is null) throw Parse($"{op}.f32 needs a rounding modifier (.rn)");
        switch (op)
        {
            case "div":
                if (rnd is null && approx is null) throw Parse("div.f32 needs .rn, .approx or .full");
                break;
            case "rcp":
            case "sqrt":
                if (rnd is null && approx is not "approx") throw Parse($"{op}.f32 needs .rn or .approx");
                break;
            case "rsqrt": case "ex2": case "lg2": case "sin": case "cos": case "tanh":
                if (approx is not "approx" || rnd is not null) throw Parse($"{op}.f32 needs .approx");
                break;
            default:
                if (approx is not null) throw Parse($"{op}.f32 does not take .{approx}");
                break;
        }
        if (op is "rem" or "and" or "or" or "xor" or "not" or "shl" or "shr" or "popc" or "clz" or "brev")
            throw Parse($"{op} does not take .f32");
        if (op is "mul" or "mad" && m.TakeAny("lo", "hi", "wide") is { } part) throw Parse($"{op}.{part} is for integers");
        int nsrc = op switch { "mad" or "fma" => 3, "add" or "sub" or "mul" or "div" or "min" or "max" => 2, _ => 1 };
        Count(ops, nsrc + 1);
        i.D = Dst(ops[0]);
        i.A = Src(ops[1], PtxType.F32);
        if (nsrc >= 2) i.B = Src(ops[2], PtxType.F32);
        if (nsrc == 3) i.C = Src(ops[3], PtxType.F32);
        i.Exec = op switch
        {
            "add" => BinF32<AddF>,
            "sub" => BinF32<SubF>,
            "mul" => BinF32<MulF>,
            "div" => approx switch { "approx" => BinApproxF32<Approx.DivApprox>, "full" => BinApproxF32<Approx.DivFull>, _ => BinF32<DivF> },
            "min" => BinF32<MinF>,
            "max" => BinF32<MaxF>,
            "mad" or "fma" => TernF32<FmaF>,
            "neg" => UnF32<NegF>,
            "abs" => UnF32<AbsF>,
            "rcp" => approx is null ? UnF32<RcpF> : UnApproxF32<Approx.Rcp>,
            "sqrt" => approx is null ? UnF32<SqrtF> : UnApproxF32<Approx.Sqrt>,
            "rsqrt" => UnApproxF32<Approx.Rsqrt>,
            "ex2" => UnApproxF32<Approx.Ex2>,
            "lg2" => UnApproxF32<Approx.Lg2>,
            "sin" => UnApproxF32<Approx.Sin>,
            "cos" => UnApproxF32<Approx.Cos>,
            "tanh" => UnApproxF32<Approx.Tanh>,
            _ => throw Unsupported($"'{_cur!.Opcode}' is not implemented"),
        };
    }
}
