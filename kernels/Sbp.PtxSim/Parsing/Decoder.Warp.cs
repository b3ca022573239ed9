using Sbp.PtxSim.Execution;
using Sbp.PtxSim.Model;

namespace Sbp.PtxSim.Parsing;

/// <summary>shfl.sync and vote.sync.</summary>
internal sealed partial class Decoder
{
    private void DecodeShfl(Instr i, Mods m, List<Operand> ops)
    {
        if (!m.Take("sync")) throw Unsupported("shfl without .sync is not implemented (it does not exist on sm_70+; use shfl.sync)");
        var mode = m.TakeAny("up", "down", "bfly", "idx") ?? throw Parse("shfl.sync needs .up, .down, .bfly or .idx");
        Types(m, 1, PtxType.B32);
        Count(ops, 5);
        if (ops[0].Kind == OperandKind.Pair)
        {
            i.D = Dst(ops[0].Items[0]);
            i.D2 = Dst(ops[0].Items[1], pred: true);
        }
        else i.D = Dst(ops[0]);
        i.A = Src(ops[1], PtxType.B32);
        i.B = Src(ops[2], PtxType.B32);
        i.C = Src(ops[3], PtxType.B32);
        i.E = Src(ops[4], PtxType.B32);
        i.Sub = (int)Enum.Parse<WarpOps.ShflMode>(mode, ignoreCase: true);
        i.Exec = WarpOps.Shfl;
    }

    private void DecodeVote(Instr i, Mods m, List<Operand> ops)
    {
        if (!m.Take("sync")) throw Unsupported("vote without .sync is not implemented (it does not exist on sm_70+; use vote.sync)");
        var mode = m.TakeAny("all", "any", "uni", "ballot") ?? throw Parse("vote.sync needs .all, .any, .uni or .ballot");
        bool ballot = mode == "ballot";
        Types(m, 1, ballot ? PtxType.B32 : PtxType.Pred);
        Count(ops, 3);
        i.D = Dst(ops[0], pred: !ballot);
        i.A = PredSrc(ops[1], out i.NotA);
        i.E = Src(ops[2], PtxType.B32);
        i.Sub = (int)Enum.Parse<WarpOps.VoteMode>(mode, ignoreCase: true);
        i.Exec = WarpOps.Vote;
    }
}
