using Sbp.PtxSim.Model;

namespace Sbp.PtxSim.Execution;

/// <summary>Atomic read-modify-write operations of atom / red.</summary>
internal enum AtomOp { Add, Min, Max, And, Or, Xor, Exch, Cas, Inc, Dec }

/// <summary>
/// atom and red on .global and .shared: executed lane by lane in a seeded order (<see cref="Machine.LaneOrder"/>), as
/// the hardware promises no order among the lanes; f32 adds therefore sum in different orders under different seeds.
/// atom writes the old value to D; red has no destination. Shared atomics are exempt from race detection. f32 add flushes subnormal
/// inputs and results (as the hardware does).
/// </summary>
internal static class AtomicOps
{
    private static ulong Apply(Instr i, ulong old, ulong b, ulong c)
    {
        var t = i.T;
        switch ((AtomOp)i.Sub)
        {
            case AtomOp.Add:
                if (t == PtxType.F32)
                    return Alu.Fb(Alu.Ftz(Alu.Ftz(Alu.F(old)) + Alu.Ftz(Alu.F(b))));
                return t.Bits() == 64 ? old + b : (uint)(old + b);
            case AtomOp.Min:
                return t switch
                {
                    PtxType.S32 => (uint)Math.Min((int)(uint)old, (int)(uint)b),
                    PtxType.S64 => (ulong)Math.Min((long)old, (long)b),
                    _ => Math.Min(old, b),
                };
            case AtomOp.Max:
                return t switch
                {
                    PtxType.S32 => (uint)Math.Max((int)(uint)old, (int)(uint)b),
                    PtxType.S64 => (ulong)Math.Max((long)old, (long)b),
                    _ => Math.Max(old, b),
                };
            case AtomOp.And: return old & b;
            case AtomOp.Or: return old | b;
            case AtomOp.Xor: return old ^ b;
            case AtomOp.Exch: return b;
            case AtomOp.Cas: return old == b ? c : old;
            case AtomOp.Inc: return (uint)old >= (uint)b ? 0 : (uint)old + 1;
            default: return (uint)old == 0 || (uint)old > (uint)b ? (uint)b : (uint)old - 1;   // Dec
        }
    }

    public static void Global(Machine m, Warp w, Instr i, uint exec)
    {
        if (exec == 0) return;
        var r = w.R;
        int size = i.Size;
        Span<ulong> sectors = stackalloc ulong[32];
        Span<int> order = stackalloc int[32];
        int n = m.LaneOrder(exec, order);
        for (int j = 0; j < n; j++)
        {
            int l = order[j];
            ulong addr = (i.AddrBase >= 0 ? r[i.AddrBase + l] : 0) + (ulong)i.Offset;
            if ((addr & (ulong)(size - 1)) != 0) throw m.Misaligned(w, l, i, "global", addr, size, true);
            if (!m.Memory.TryResolve(addr, size, out var a, out int off)) throw m.GlobalOutOfBounds(w, l, i, addr, size, true);
            ulong old = MemoryOps.ReadRaw(a.Data, off, size, false);
            MemoryOps.WriteRaw(a.Data, off, size, Apply(i, old, r[i.B + l], i.C >= 0 ? r[i.C + l] : 0));
            if (i.D >= 0) r[i.D + l] = old;
            sectors[j] = addr >> 5;
        }
        m.GlobalRequests++;
        m.GlobalTransactions += AccessStats.DistinctSectors(sectors[..n]);
        m.BytesLoaded += (long)n * size;
        m.BytesStored += (long)n * size;
    }

    public static void Shared(Machine m, Warp w, Instr i, uint exec)
    {
        if (exec == 0) return;
        var r = w.R;
        int size = i.Size;
        Span<uint> lanes = stackalloc uint[32];
        Span<int> order = stackalloc int[32];
        int n = m.LaneOrder(exec, order);
        for (int j = 0; j < n; j++)
        {
            int l = order[j];
            int off = MemoryOps.CheckShared(m, w, i, l, size, write: true);
            ulong old = MemoryOps.ReadRaw(m.Shared, off, size, false);
            MemoryOps.WriteRaw(m.Shared, off, size, Apply(i, old, r[i.B + l], i.C >= 0 ? r[i.C + l] : 0));
            if (i.D >= 0) r[i.D + l] = old;
            lanes[l] = (uint)off;
        }
        MemoryOps.CountShared(m, lanes, exec, size);
    }
}
