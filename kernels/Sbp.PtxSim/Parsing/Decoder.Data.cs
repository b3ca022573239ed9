using Sbp.PtxSim.Execution;
using Sbp.PtxSim.Model;

namespace Sbp.PtxSim.Parsing;

/// <summary>setp, selp, mov, cvt, cvta.</summary>
internal sealed partial class Decoder
{
    private void DecodeSetp(Instr i, Mods m, List<Operand> ops)
    {
        Cmp? cmp = null;
        foreach (var p in m.Remaining)
            if (Alu.TryParseCmp(p, out var c)) { cmp = c; m.Take(p); break; }
        if (cmp is null) throw Parse("setp needs a comparison (.eq .ne .lt .le .gt .ge .lo .ls .hi .hs or an unordered float form)");
        var bop = m.TakeAny("and", "or", "xor") switch { "and" => BoolOp.And, "or" => BoolOp.Or, "xor" => BoolOp.Xor, _ => BoolOp.None };
        i.Ftz = m.Take("ftz");
        var t = Types(m, 1, PtxType.B32, PtxType.U32, PtxType.S32, PtxType.B64, PtxType.U64, PtxType.S64, PtxType.F32)[0];
        i.T = t;
        var c0 = cmp.Value;
        bool floatOnly = c0 >= Cmp.Equ, unsignedOnly = c0 is Cmp.Lo or Cmp.Ls or Cmp.Hi or Cmp.Hs;
        if (floatOnly && t != PtxType.F32) throw Parse($"setp.{c0.ToString().ToLowerInvariant()} is for floating-point types");
        if (unsignedOnly && t == PtxType.F32) throw Parse($"setp.{c0.ToString().ToLowerInvariant()} is for integer types");
        if (t is PtxType.B32 or PtxType.B64 && c0 is not (Cmp.Eq or Cmp.Ne)) throw Parse($"setp on .{t.Name()} allows only .eq and .ne");
        Count(ops, bop == BoolOp.None ? 3 : 4);
        if (ops[0].Kind == OperandKind.Pair)
        {
            i.D = Dst(ops[0].Items[0], pred: true);
            i.D2 = Dst(ops[0].Items[1], pred: true);
        }
        else i.D = Dst(ops[0], pred: true);
        i.A = Src(ops[1], t);
        i.B = Src(ops[2], t);
        if (bop != BoolOp.None) i.C = PredSrc(ops[3], out i.NotC);
        i.Sub = (int)c0;
        i.Sub2 = (int)bop;
        i.Exec = t switch
        {
            PtxType.F32 => Alu.SetpF32,
            PtxType.S32 => Alu.SetpS32,
            PtxType.S64 => Alu.SetpS64,
            PtxType.B64 or PtxType.U64 => Alu.SetpU64,
            _ => Alu.SetpU32,
        };
    }

    private void DecodeSelp(Instr i, Mods m, List<Operand> ops)
    {
        var t = Types(m, 1, PtxType.B32, PtxType.U32, PtxType.S32, PtxType.B64, PtxType.U64, PtxType.S64, PtxType.F32)[0];
        Count(ops, 4);
        i.D = Dst(ops[0]);
        i.A = Src(ops[1], t);
        i.B = Src(ops[2], t);
        i.C = PredSrc(ops[3], out i.NotC);
        i.Exec = Alu.Selp;
    }

    private void DecodeMov(Instr i, Mods m, List<Operand> ops)
    {
        var t = Types(m, 1)[0];
        Count(ops, 2);
        i.T = t;
        if (t == PtxType.Pred)
        {
            i.D = Dst(ops[0], pred: true);
            i.A = PredSrc(ops[1], out bool not);
            if (not) throw Parse("mov.pred does not take '!'; use not.pred");
            i.Exec = Alu.Mov;
            return;
        }
        if (t.Bits() is not (16 or 32 or 64)) throw Unsupported($"mov.{t.Name()} is not implemented");
        if (ops[1].Kind == OperandKind.Name && _paramOffset.TryGetValue(ops[1].Name, out int paramOffset))
        {
            // The param's .param-space address, modelled as its offset in the param buffer (read with ld.param [%rd]).
            if (t is not (PtxType.U64 or PtxType.B64 or PtxType.S64))
                throw Unsupported($"mov.{t.Name()} of parameter {ops[1].Name}: a parameter's address is 64-bit (use mov.u64/.b64/.s64)");
            i.D = Dst(ops[0]);
            i.A = Const((ulong)paramOffset);
            i.Exec = Alu.Mov;
            return;
        }
        if (ops[1].Kind == OperandKind.Vector || ops[0].Kind == OperandKind.Vector)
        {
            if (t is not (PtxType.B32 or PtxType.B64)) throw Parse("mov pack/unpack needs .b32 or .b64");
            bool pack = ops[1].Kind == OperandKind.Vector;
            var items = pack ? ops[1].Items : ops[0].Items;
            if (items.Count is not (2 or 4) || t.Bits() / items.Count < 8) throw Parse("mov pack/unpack needs 2 or 4 elements");
            i.Size = t.Bits() / items.Count / 8;
            var et = i.Size switch { 1 => PtxType.B8, 2 => PtxType.B16, 4 => PtxType.B32, _ => PtxType.B64 };
            if (pack)
            {
                i.D = Dst(ops[0]);
                i.AV = [.. items.Select(o => Src(o, et))];
                i.Exec = Alu.MovPack;
            }
            else
            {
                i.A = Src(ops[1], t);
                i.DV = [.. items.Select(o => o.Kind == OperandKind.Name && o.Name == "_" ? -1 : Dst(o))];
                i.Exec = Alu.MovUnpack;
            }
            return;
        }
        if (t == PtxType.F32 || t.IsInt())
        {
            i.D = Dst(ops[0]);
            i.A = Src(ops[1], t);
            i.DMask = PtxTypes.Mask(t.Bits());
            i.Exec = Alu.Mov;
            return;
        }
        throw Unsupported($"mov.{t.Name()} is not implemented");
    }

    private void DecodeCvta(Instr i, Mods m, List<Operand> ops)
    {
        m.Take("to");
        if (!m.Take("global"))
            throw Unsupported($"'{_cur!.Opcode}' is not implemented (generic addressing is modelled for global memory only: cvta.to.global / cvta.global)");
        var t = Types(m, 1, PtxType.U64, PtxType.B64, PtxType.S64)[0];
        Count(ops, 2);
        i.D = Dst(ops[0]);
        i.A = Src(ops[1], t);
        i.Exec = Alu.Mov;
    }

    private void DecodeCvt(Instr i, Mods m, List<Operand> ops)
    {
        var rnd = m.TakeAny("rn", "rz", "rm", "rp", "rni", "rzi", "rmi", "rpi") switch
        {
            "rn" => Rounding.Rn, "rz" => Rounding.Rz, "rm" => Rounding.Rm, "rp" => Rounding.Rp,
            "rni" => Rounding.Rni, "rzi" => Rounding.Rzi, "rmi" => Rounding.Rmi, "rpi" => Rounding.Rpi,
            _ => Rounding.None,
        };
        i.Ftz = m.Take("ftz");
        i.Sat = m.Take("sat");
        var ts = Types(m, 2, halfAllowed: true);
        PtxType dt = ts[0], st = ts[1];
        if (dt == PtxType.Pred || st == PtxType.Pred) throw Parse("cvt does not convert predicates (use selp / setp)");
        Count(ops, 2);
        i.T = dt;
        i.T2 = st;
        i.Sub = (int)rnd;
        i.D = Dst(ops[0]);
        i.A = Src(ops[1], st);
        i.DMask = PtxTypes.Mask(RegBits(ops[0]));
        bool di = dt.IsInt(), si = st.IsInt();
        if (dt is PtxType.F16 or PtxType.BF16 || st is PtxType.F16 or PtxType.BF16)
        {
            // the 16-bit storage casts: cvt.rn.{f16,bf16}.f32 and cvt.f32.{f16,bf16}, nothing else with .f16 / .bf16
            bool plain = !i.Ftz && !i.Sat;
            if (dt == PtxType.F16 && st == PtxType.F32 && rnd == Rounding.Rn && plain) i.Exec = Alu.CvtF32ToF16;
            else if (dt == PtxType.F32 && st == PtxType.F16 && rnd == Rounding.None && plain) i.Exec = Alu.CvtF16ToF32;
            else if (dt == PtxType.BF16 && st == PtxType.F32 && rnd == Rounding.Rn && plain) i.Exec = Alu.CvtF32ToBf16;
            else if (dt == PtxType.F32 && st == PtxType.BF16 && rnd == Rounding.None && plain) i.Exec = Alu.CvtBf16ToF32;
            else throw Unsupported($"cvt.{dt.Name()}.{st.Name()} with these modifiers is not implemented (supported: cvt.rn.f16.f32, cvt.f32.f16, cvt.rn.bf16.f32, cvt.f32.bf16)");
        }
        else if (di && si)
        {
            if (rnd != Rounding.None) throw Parse("integer-to-integer cvt takes no rounding modifier");
            if (i.Ftz) throw Parse(".ftz is for float conversions");
            i.Exec = Alu.CvtIntInt;
        }
        else if (di)
        {
            if (rnd is not (Rounding.Rni or Rounding.Rzi or Rounding.Rmi or Rounding.Rpi))
                throw Parse("float-to-integer cvt needs an integer rounding modifier (.rni .rzi .rmi .rpi)");
            i.Exec = Alu.CvtFloatInt;
        }
        else if (si)
        {
            if (rnd is not (Rounding.Rn or Rounding.Rz or Rounding.Rm or Rounding.Rp))
                throw Parse("integer-to-float cvt needs a rounding modifier (.rn .rz .rm .rp)");
            if (i.Ftz) throw Parse(".ftz does not apply to integer-to-float cvt");
            i.Exec = Alu.CvtIntFloat;
        }
        else
        {
            if (rnd is Rounding.Rz or Rounding.Rm or Rounding.Rp)
                throw Unsupported($"cvt.{rnd.ToString().ToLowerInvariant()}.f32.f32 is not implemented (use .rni/.rzi/.rmi/.rpi or none)");
            i.Exec = Alu.CvtFloatFloat;
        }
    }
}
