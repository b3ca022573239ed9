using Sbp.PtxSim.Execution;
using Sbp.PtxSim.Model;

namespace Sbp.PtxSim.Parsing;

/// <summary>ld, st, atom, red. Cache operators, eviction hints, .nc, .volatile and memory-order qualifiers are
/// accepted and ignored (the simulator is sequentially consistent).</summary>
internal sealed partial class Decoder
{
    private string Space(Mods m, string op)
    {
        var space = m.TakeAny("param", "global", "shared", "shared::cta", "local", "const");
        if (space == "shared::cta") space = "shared";
        return space switch
        {
            null => throw Unsupported($"generic-address {op} (no state space) is not implemented; use .global or .shared"),
            "local" or "const" => throw Unsupported($"{op}.{space} is not implemented (no local or constant memory)"),
            _ => space,
        };
    }

    private void TakeOrdering(Mods m)
    {
        m.TakeAny("weak", "volatile", "relaxed", "acquire", "release");
        m.TakeAny("gpu", "sys");
        m.TakePrefixed("L1::");
        m.TakePrefixed("L2::");
    }

    private (int Size, int Count, PtxType Type) VecAndType(Mods m)
    {
        int count = m.TakeAny("v2", "v4") switch { "v2" => 2, "v4" => 4, _ => 1 };
        var t = Types(m, 1)[0];
        if (t == PtxType.Pred) throw Parse("memory access of .pred is not allowed");
        int size = t.Bytes();
        if (size * count > 16) throw Parse($"vector access of {count} x {size} bytes exceeds 16 bytes");
        return (size, count, t);
    }

    private void DecodeLd(Instr i, Mods m, List<Operand> ops)
    {
        TakeOrdering(m);
        var space = Space(m, "ld");
        if (space == "global") m.Take("nc");
        m.TakeAny("ca", "cg", "cs", "lu", "cv");
        TakeOrdering(m);
        var (size, count, t) = VecAndType(m);
        Count(ops, 2);
        (i.AddrBase, i.Offset) = Address(ops[1], space);
        i.Size = size;
        i.Count = count;
        i.Signed = t.IsSigned();
        i.T = t;
        if (count == 1)
        {
            if (ops[0].Kind == OperandKind.Vector) throw Parse("a vector destination needs .v2 or .v4");
            i.D = Dst(ops[0]);
            i.DMask = PtxTypes.Mask(RegBits(ops[0]));
        }
        else
        {
            if (ops[0].Kind != OperandKind.Vector || ops[0].Items.Count != count) throw Parse($"ld.v{count} needs {{...}} with {count} registers");
            i.DV = [.. ops[0].Items.Select(o => o.Kind == OperandKind.Name && o.Name == "_" ? -1 : Dst(o))];
            i.DVMask = [.. ops[0].Items.Select(o => PtxTypes.Mask(RegBits(o)))];
        }
        switch (space)
        {
            case "param":
                if (count != 1) throw Unsupported("vector ld.param is not implemented");
                if (i.AddrBase >= 0)
                {
                    // A .param address from `mov.u64 %rd, p_name`: each lane's offset is checked when it runs.
                    i.Exec = MemoryOps.LdParamIndirect;
                    break;
                }
                if (i.Offset < 0 || i.Offset + size > _paramBytes)
                    throw Parse($"ld.param reads bytes [{i.Offset}, {i.Offset + size}) outside the {_paramBytes} bytes of parameters");
                i.Exec = MemoryOps.LdParam;
                break;
            case "global": i.Exec = MemoryOps.LdGlobal; break;
            default: i.Exec = MemoryOps.LdShared; break;
        }
    }

    private void DecodeSt(Instr i, Mods m, List<Operand> ops)
    {
        TakeOrdering(m);
        var space = Space(m, "st");
        if (space == "param") throw Unsupported("st.param is not implemented (kernel parameters are read-only)");
        m.TakeAny("wb", "cg", "cs", "wt");
        TakeOrdering(m);
        var (size, count, t) = VecAndType(m);
        Count(ops, 2);
        (i.AddrBase, i.Offset) = Address(ops[0], space);
        i.Size = size;
        i.Count = count;
        i.T = t;
        if (count == 1)
        {
            if (ops[1].Kind == OperandKind.Vector) throw Parse("a vector source needs .v2 or .v4");
            i.A = Src(ops[1], t);
        }
        else
        {
            if (ops[1].Kind != OperandKind.Vector || ops[1].Items.Count != count) throw Parse($"st.v{count} needs {{...}} with {count} values");
            i.AV = [.. ops[1].Items.Select(o => Src(o, t))];
        }
        i.Exec = space == "global" ? MemoryOps.StGlobal : MemoryOps.StShared;
    }

    private void DecodeAtom(Instr i, Mods m, List<Operand> ops)
    {
        bool red = m.Base == "red";
        m.TakeAny("relaxed", "acquire", "release", "acq_rel");
        m.TakeAny("cta", "gpu", "sys");
        var space = m.TakeAny("global", "shared", "shared::cta")
            ?? throw Unsupported($"{m.Base} without .global or .shared (generic addressing) is not implemented");
        if (space == "shared::cta") space = "shared";
        var opName = m.TakeAny("add", "min", "max", "and", "or", "xor", "exch", "cas", "inc", "dec")
            ?? throw Unsupported($"'{_cur!.Opcode}' is not implemented (add min max and or xor exch cas inc dec are)");
        var op = Enum.Parse<AtomOp>(opName, ignoreCase: true);
        var t = Types(m, 1)[0];
        bool ok = op switch
        {
            AtomOp.Add => t is PtxType.U32 or PtxType.S32 or PtxType.U64 or PtxType.F32,
            AtomOp.Min or AtomOp.Max => t is PtxType.U32 or PtxType.S32 or PtxType.U64 or PtxType.S64,
            AtomOp.And or AtomOp.Or or AtomOp.Xor => t is PtxType.B32 or PtxType.B64,
            AtomOp.Exch or AtomOp.Cas => t is PtxType.B32 or PtxType.B64 or PtxType.U32 or PtxType.S32 or PtxType.U64,
            _ => t is PtxType.U32,
        };
        if (!ok) throw Unsupported($"{m.Base}.{opName}.{t.Name()} is not implemented");
        if (red && op is AtomOp.Exch or AtomOp.Cas) throw Parse($"red.{opName} does not exist (use atom)");
        int srcs = op == AtomOp.Cas ? 2 : 1;
        Count(ops, (red ? 1 : 2) + srcs);
        int k = 0;
        if (!red) i.D = Dst(ops[k++]);
        (i.AddrBase, i.Offset) = Address(ops[k++], space);
        i.B = Src(ops[k++], t);
        if (srcs == 2) i.C = Src(ops[k], t);
        i.Size = t.Bytes();
        i.T = t;
        i.Sub = (int)op;
        i.Exec = space == "global" ? AtomicOps.Global : AtomicOps.Shared;
    }
}
