using Sbp.PtxSim.Execution;
using Sbp.PtxSim.Model;

namespace Sbp.PtxSim.Parsing;

/// <summary>Instruction dispatch by mnemonic, plus control flow and miscellaneous instructions.</summary>
internal sealed partial class Decoder
{
    private Instr DecodeOne(RawInstruction raw)
    {
        var m = new Mods(raw.Opcode);
        var i = new Instr { Text = raw.Text, Kind = raw.Opcode };
        if (raw.Guard is not null)
        {
            i.Guard = PredSrc(new Operand { Kind = OperandKind.Name, Name = raw.Guard }, out _);
            i.GuardNot = raw.GuardNot;
        }
        var ops = raw.Operands;
        switch (m.Base)
        {
            case "add": case "sub": case "mul": case "mad": case "fma": case "div": case "rem": case "min": case "max":
            case "neg": case "abs": case "and": case "or": case "xor": case "not": case "shl": case "shr":
            case "popc": case "clz": case "brev":
            case "rcp": case "sqrt": case "rsqrt": case "ex2": case "lg2": case "sin": case "cos": case "tanh":
                DecodeArith(i, m, ops);
                break;
            case "setp": DecodeSetp(i, m, ops); break;
            case "selp": DecodeSelp(i, m, ops); break;
            case "mov": DecodeMov(i, m, ops); break;
            case "cvt": DecodeCvt(i, m, ops); break;
            case "cvta": DecodeCvta(i, m, ops); break;
            case "ld": DecodeLd(i, m, ops); break;
            case "st": DecodeSt(i, m, ops); break;
            case "atom": case "red": DecodeAtom(i, m, ops); break;
            case "shfl": DecodeShfl(i, m, ops); break;
            case "vote": DecodeVote(i, m, ops); break;
            case "activemask":
                Types(m, 1, PtxType.B32);
                Count(ops, 1);
                i.D = Dst(ops[0]);
                i.Exec = WarpOps.ActiveMask;
                break;
            case "bar": case "barrier": DecodeBar(i, m, ops); break;
            case "membar":
                if (m.TakeAny("cta", "gl", "sys") is null) throw Unsupported($"'{raw.Opcode}' is not implemented (membar.cta/.gl/.sys are)");
                Count(ops, 0);
                i.Exec = Alu.Nop;
                break;
            case "fence":
                if (m.TakeAny("sc", "acq_rel") is null || m.TakeAny("cta", "gpu", "sys") is null)
                    throw Unsupported($"'{raw.Opcode}' is not implemented (fence.sc/.acq_rel with .cta/.gpu/.sys is)");
                Count(ops, 0);
                i.Exec = Alu.Nop;
                break;
            case "bra":
                i.Uni = m.Take("uni");
                Count(ops, 1);
                i.Target = Label(ops[0]);
                i.Flow = Flow.Branch;
                break;
            case "ret":
            case "exit":
                m.Take("uni");
                Count(ops, 0);
                i.Flow = Flow.Exit;
                break;
            case "trap":
                Count(ops, 0);
                i.Exec = static (mc, w, ins, exec) =>
                {
                    if (exec != 0)
                        throw new PtxSimException("trap executed.", mc.Where(w, System.Numerics.BitOperations.TrailingZeroCount(exec), ins));
                };
                break;
            default:
                throw Unsupported($"'{raw.Opcode}' is not implemented by the simulator");
        }
        if (m.Count > 0)
            throw Unsupported($"modifier(s) .{string.Join(" .", m.Remaining)} of '{raw.Opcode}' are not implemented by the simulator");
        return i;
    }

    private void Count(List<Operand> ops, int n)
    {
        if (ops.Count != n) throw Parse($"expected {n} operand(s), found {ops.Count}");
    }

    /// <summary>Takes exactly <paramref name="n"/> type suffixes; each must be one of <paramref name="allowed"/> (any if empty).</summary>
    private List<PtxType> Types(Mods m, int n, params PtxType[] allowed) => Types(m, n, false, allowed);

    /// <summary>As above; <paramref name="halfAllowed"/>: .f16 is accepted (cvt's 16-bit storage conversions).</summary>
    private List<PtxType> Types(Mods m, int n, bool halfAllowed, params PtxType[] allowed)
    {
        var ts = m.TakeTypes();
        if (ts.Count != n) throw Parse($"'{m.Base}' needs {n} type suffix(es), found {ts.Count}");
        foreach (var t in ts)
        {
            if ((t is PtxType.F16 or PtxType.BF16 && !halfAllowed) || t == PtxType.F64) throw Unsupported($".{t.Name()} is not supported (the simulator implements .f32 only)");
            if (allowed.Length > 0 && Array.IndexOf(allowed, t) < 0)
                throw Unsupported($"'{m.Base}' with type .{t.Name()} is not implemented (supported: {string.Join(" ", allowed.Select(a => "." + a.Name()))})");
        }
        return ts;
    }

    private void DecodeBar(Instr i, Mods m, List<Operand> ops)
    {
        m.Take("cta");
        if (!m.Take("sync"))
            throw Unsupported($"'{_cur!.Opcode}' is not implemented (only bar.sync / barrier.sync)");
        m.Take("aligned");
        if (ops.Count is < 1 or > 2) throw Parse("bar.sync takes a barrier number and an optional thread count");
        if (ops[0].Kind != OperandKind.Immediate || !Literals.TryParseInteger(ops[0].ImmText, out long id) || id is < 0 or > 15)
            throw Unsupported("bar.sync with a barrier number other than an immediate 0..15");
        if (ops.Count == 2)
        {
            if (ops[1].Kind != OperandKind.Immediate || !Literals.TryParseInteger(ops[1].ImmText, out long n) || n <= 0 || n % 32 != 0)
                throw Unsupported("bar.sync thread count must be an immediate multiple of 32");
            i.Size = (int)n;
        }
        i.Sub = (int)id;
        i.Flow = Flow.Barrier;
    }
}
