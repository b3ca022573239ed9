using System.Numerics;
using System.Runtime.CompilerServices;
using Sbp.PtxSim.Model;

namespace Sbp.PtxSim.Execution;

/// <summary>
/// ld / st on .param, .global and .shared. Every global access must lie inside one live allocation and every shared
/// access inside the block's shared memory; all accesses must be naturally aligned (vectors: to their full size).
/// Lanes run in lane order, so overlapping stores of one warp leave the highest lane's value.
/// </summary>
internal static class MemoryOps
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong ReadRaw(byte[] data, int offset, int size, bool signed)
    {
        ref byte b = ref data[offset];
        return size switch
        {
            4 => Unsafe.ReadUnaligned<uint>(ref b),
            8 => Unsafe.ReadUnaligned<ulong>(ref b),
            2 => signed ? (ulong)(long)Unsafe.ReadUnaligned<short>(ref b) : Unsafe.ReadUnaligned<ushort>(ref b),
            _ => signed ? (ulong)(long)(sbyte)b : b,
        };
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void WriteRaw(byte[] data, int offset, int size, ulong v)
    {
        ref byte b = ref data[offset];
        switch (size)
        {
            case 4: Unsafe.WriteUnaligned(ref b, (uint)v); break;
            case 8: Unsafe.WriteUnaligned(ref b, v); break;
            case 2: Unsafe.WriteUnaligned(ref b, (ushort)v); break;
            default: b = (byte)v; break;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong Address(ulong[] r, Instr i, int l) => (i.AddrBase >= 0 ? r[i.AddrBase + l] : 0) + (ulong)i.Offset;

    /// <summary>Alignment and bounds of one lane's global access; returns its address.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong ResolveGlobal(Machine m, Warp w, Instr i, int l, int total, bool write, out SimMemory.Allocation a, out int off)
    {
        ulong addr = Address(w.R, i, l);
        if ((addr & (ulong)(total - 1)) != 0) throw m.Misaligned(w, l, i, "global", addr, total, write);
        if (!m.Memory.TryResolve(addr, total, out a, out off)) throw m.GlobalOutOfBounds(w, l, i, addr, total, write);
        return addr;
    }

    /// <summary>Counts one global request and its sectors; returns the bytes moved.</summary>
    private static long CountGlobal(Machine m, Span<ulong> sectors, int total)
    {
        m.GlobalRequests++;
        m.GlobalTransactions += AccessStats.DistinctSectors(sectors);
        return (long)sectors.Length * total;
    }

    /// <summary>ld.param: the same bytes for every lane (offset checked at decode time).</summary>
    public static void LdParam(Machine m, Warp w, Instr i, uint exec)
    {
        var r = w.R;
        ulong v = ReadRaw(m.Param, (int)i.Offset, i.Size, i.Signed) & i.DMask;
        for (uint k = exec; k != 0; k &= k - 1) r[i.D + BitOperations.TrailingZeroCount(k)] = v;
    }

    /// <summary>ld.param [%rd+off]: each lane reads at its own offset into the param buffer (from mov.u64 %rd, p_name),
    /// which must lie inside the entry's parameters and be aligned to the access size.</summary>
    public static void LdParamIndirect(Machine m, Warp w, Instr i, uint exec)
    {
        var r = w.R;
        int size = i.Size;
        ulong limit = (ulong)m.Entry.ParamBytes;
        for (uint k = exec; k != 0; k &= k - 1)
        {
            int l = BitOperations.TrailingZeroCount(k);
            ulong addr = Address(r, i, l);
            if (addr > limit || limit - addr < (ulong)size) throw m.ParamOutOfBounds(w, l, i, addr, size);
            if ((addr & (ulong)(size - 1)) != 0) throw m.Misaligned(w, l, i, "param", addr, size, write: false);
            r[i.D + l] = ReadRaw(m.Param, (int)addr, size, i.Signed) & i.DMask;
        }
    }

    /// <summary>What a load or a store does with one lane's bytes once the access is checked.</summary>
    private interface ILaneAccess { static abstract void Move(ulong[] r, Instr i, int l, byte[] data, int off, int es); }

    private struct LoadLane : ILaneAccess
    {
        public static void Move(ulong[] r, Instr i, int l, byte[] data, int off, int es)
        {
            if (i.Count == 1) r[i.D + l] = ReadRaw(data, off, es, i.Signed) & i.DMask;
            else
                for (int e = 0; e < i.Count; e++)
                    if (i.DV[e] >= 0) r[i.DV[e] + l] = ReadRaw(data, off + e * es, es, i.Signed) & i.DVMask[e];
        }
    }

    private struct StoreLane : ILaneAccess
    {
        public static void Move(ulong[] r, Instr i, int l, byte[] data, int off, int es)
        {
            if (i.Count == 1) WriteRaw(data, off, es, r[i.A + l]);
            else
                for (int e = 0; e < i.Count; e++) WriteRaw(data, off + e * es, es, r[i.AV[e] + l]);
        }
    }

    /// <summary>The lane loop of ld.global / st.global; returns the bytes moved.</summary>
    private static long Global<TAccess>(Machine m, Warp w, Instr i, uint exec, bool write) where TAccess : struct, ILaneAccess
    {
        var r = w.R;
        int es = i.Size, total = es * i.Count;
        Span<ulong> sectors = stackalloc ulong[32];
        int n = 0;
        for (uint k = exec; k != 0; k &= k - 1)
        {
            int l = BitOperations.TrailingZeroCount(k);
            ulong addr = ResolveGlobal(m, w, i, l, total, write, out var a, out int off);
            TAccess.Move(r, i, l, a.Data, off, es);
            sectors[n++] = addr >> 5;
        }
        return CountGlobal(m, sectors[..n], total);
    }

    public static void LdGlobal(Machine m, Warp w, Instr i, uint exec)
    {
        if (exec == 0) return;
        m.BytesLoaded += Global<LoadLane>(m, w, i, exec, write: false);
    }

    public static void StGlobal(Machine m, Warp w, Instr i, uint exec)
    {
        if (exec == 0) return;
        m.BytesStored += Global<StoreLane>(m, w, i, exec, write: true);
    }

    /// <summary>The lane loop of ld.shared / st.shared.</summary>
    private static void Shared<TAccess>(Machine m, Warp w, Instr i, uint exec, bool write) where TAccess : struct, ILaneAccess
    {
        var r = w.R;
        int es = i.Size, total = es * i.Count;
        Span<uint> lanes = stackalloc uint[32];
        for (uint k = exec; k != 0; k &= k - 1)
        {
            int l = BitOperations.TrailingZeroCount(k);
            int off = SharedLane(m, w, i, l, total, write);
            TAccess.Move(r, i, l, m.Shared, off, es);
            lanes[l] = (uint)off;
        }
        CountShared(m, lanes, exec, total);
    }

    public static void LdShared(Machine m, Warp w, Instr i, uint exec)
    {
        if (exec == 0) return;
        Shared<LoadLane>(m, w, i, exec, write: false);
    }

    public static void StShared(Machine m, Warp w, Instr i, uint exec)
    {
        if (exec == 0) return;
        Shared<StoreLane>(m, w, i, exec, write: true);
    }

    /// <summary>Checks one lane's shared access (bounds, alignment, races); returns its byte offset.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int SharedLane(Machine m, Warp w, Instr i, int l, int total, bool write)
    {
        int off = CheckShared(m, w, i, l, total, write);
        var c = write
            ? m.Race.Write(off, total, w.Index, w.Index * 32 + l, i.Pc)
            : m.Race.Read(off, total, w.Index, w.Index * 32 + l, i.Pc);
        if (c is { } conflict) throw m.SharedRace(w, l, i, conflict, write);
        return off;
    }

    /// <summary>Bounds and alignment of a shared access; returns the byte offset.</summary>
    internal static int CheckShared(Machine m, Warp w, Instr i, int l, int size, bool write)
    {
        ulong addr = Address(w.R, i, l);
        if (addr > (ulong)m.SharedSize || (ulong)m.SharedSize - addr < (ulong)size)
            throw m.SharedOutOfBounds(w, l, i, addr, size, write);
        if ((addr & (ulong)(size - 1)) != 0) throw m.Misaligned(w, l, i, "shared", addr, size, write);
        return (int)addr;
    }

    internal static void CountShared(Machine m, ReadOnlySpan<uint> laneOffsets, uint exec, int size)
    {
        m.SharedRequests++;
        var (wavefronts, phases) = AccessStats.SharedWavefronts(laneOffsets, exec, size);
        m.SharedBankConflicts += wavefronts - phases;
    }
}
