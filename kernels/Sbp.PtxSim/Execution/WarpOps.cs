using System.Numerics;
using Sbp.PtxSim.Model;

namespace Sbp.PtxSim.Execution;

/// <summary>Warp-collective instructions: shfl.sync, vote.sync, activemask.</summary>
internal static class WarpOps
{
    public enum ShflMode { Up, Down, Bfly, Idx }
    public enum VoteMode { All, Any, Uni, Ballot }

    /// <summary>
    /// The .sync contract: every executing lane names itself in membermask, all lanes give the same membermask,
    /// and every non-exited lane of the membermask executes this instruction together with them.
    /// </summary>
    private static uint CheckMembers(Machine m, Warp w, Instr i, uint exec, string what)
    {
        var r = w.R;
        int first = BitOperations.TrailingZeroCount(exec);
        uint member = (uint)r[i.E + first];
        for (uint k = exec; k != 0; k &= k - 1)
        {
            int l = BitOperations.TrailingZeroCount(k);
            uint ml = (uint)r[i.E + l];
            if (ml != member)
                throw new PtxSimException($"{what}: lanes {first} and {l} pass different membermasks (0x{member:X8} and 0x{ml:X8}).", m.Where(w, l, i));
            if ((ml & (1u << l)) == 0)
                throw new PtxSimException($"{what}: the executing lane {l} is not in its membermask 0x{ml:X8}.", m.Where(w, l, i));
        }
        uint missing = member & w.Valid & ~w.Exited & ~exec;
        if (missing != 0)
            throw new PtxSimException(
                $"{what}: membermask 0x{member:X8} names lane(s) 0x{missing:X8} that did not execute this instruction together with lanes 0x{exec:X8} "
                + "(they diverged, wait elsewhere or are predicated off).",
                m.Where(w, BitOperations.TrailingZeroCount(missing), i));
        return member;
    }

    /// <summary>shfl.sync.{up,down,bfly,idx}.b32 d[|p], a, b, c, membermask (PTX ISA semantics of b and c).</summary>
    public static void Shfl(Machine m, Warp w, Instr i, uint exec)
    {
        if (exec == 0) return;
        var r = w.R;
        uint member = CheckMembers(m, w, i, exec, "shfl.sync");
        Span<ulong> src = stackalloc ulong[32];
        for (uint k = exec; k != 0; k &= k - 1)
        {
            int l = BitOperations.TrailingZeroCount(k);
            src[l] = (uint)r[i.A + l];
        }
        var mode = (ShflMode)i.Sub;
        for (uint k = exec; k != 0; k &= k - 1)
        {
            int lane = BitOperations.TrailingZeroCount(k);
            int b = (int)((uint)r[i.B + lane] & 31);
            uint c = (uint)r[i.C + lane];
            int seg = (int)((c >> 8) & 31), cval = (int)(c & 31);
            int maxLane = (lane & seg) | (cval & ~seg), minLane = lane & seg;
            int j;
            bool p;
            switch (mode)
            {
                case ShflMode.Up: j = lane - b; p = j >= maxLane; break;
                case ShflMode.Down: j = lane + b; p = j <= maxLane; break;
                case ShflMode.Bfly: j = lane ^ b; p = j <= maxLane; break;
                default: j = minLane | (b & ~seg); p = j <= maxLane; break;
            }
            if (!p) j = lane;
            if ((exec & (1u << j)) == 0 || (member & (1u << j)) == 0)
                throw new PtxSimException(
                    $"shfl.sync: lane {lane} reads lane {j}, which {((member & (1u << j)) == 0 ? $"is not in the membermask 0x{member:X8}" : "is not active (exited, diverged or predicated off)")}; its value would be undefined.",
                    m.Where(w, lane, i));
            r[i.D + lane] = src[j];
            if (i.D2 >= 0) r[i.D2 + lane] = p ? 1UL : 0UL;
        }
    }

    /// <summary>vote.sync.{all,any,uni}.pred d, a, membermask and vote.sync.ballot.b32 d, a, membermask.</summary>
    public static void Vote(Machine m, Warp w, Instr i, uint exec)
    {
        if (exec == 0) return;
        var r = w.R;
        CheckMembers(m, w, i, exec, "vote.sync");
        uint ballot = 0;
        for (uint k = exec; k != 0; k &= k - 1)
        {
            int l = BitOperations.TrailingZeroCount(k);
            if ((r[i.A + l] != 0) ^ i.NotA) ballot |= 1u << l;
        }
        ulong v = (VoteMode)i.Sub switch
        {
            VoteMode.All => ballot == exec ? 1UL : 0UL,
            VoteMode.Any => ballot != 0 ? 1UL : 0UL,
            VoteMode.Uni => ballot == exec || ballot == 0 ? 1UL : 0UL,
            _ => ballot,
        };
        for (uint k = exec; k != 0; k &= k - 1) r[i.D + BitOperations.TrailingZeroCount(k)] = v;
    }

    /// <summary>activemask.b32 d: the lanes executing this instruction.</summary>
    public static void ActiveMask(Machine m, Warp w, Instr i, uint exec)
    {
        var r = w.R;
        for (uint k = exec; k != 0; k &= k - 1) r[i.D + BitOperations.TrailingZeroCount(k)] = exec;
    }
}
