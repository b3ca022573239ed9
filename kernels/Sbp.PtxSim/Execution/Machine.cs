using System.Numerics;
using Sbp.PtxSim.Model;

namespace Sbp.PtxSim.Execution;

/// <summary>
/// Runs one launch. Blocks run one after another in a seeded order (Machine.Order.cs); within a block each warp runs
/// until all its lanes have exited or wait at a barrier, then the next warp (in a seeded order after each barrier). A warp step executes the instruction at the
/// smallest PC among its runnable lanes for every lane at that PC (min-PC reconvergence), so structured divergence
/// reconverges and warp-collective instructions see the lanes that reached them together. When no warp can run,
/// either every thread has exited (the block is done), or all waiting threads wait at the same bar.sync (they are
/// released, and shared-memory race epochs advance), or they wait at different barriers (deadlock).
/// </summary>
internal sealed partial class Machine
{
    public readonly PtxEntry Entry;
    public readonly SimMemory Memory;
    public readonly byte[] Param;
    public readonly byte[] Shared;
    public readonly int SharedSize;
    public readonly RaceDetector Race;
    public readonly Dim3 Grid, BlockDim;
    public Dim3 BlockIdx;

    // Statistics.
    public readonly long[] KindCounts;
    public long Instructions, WarpInstructions, BytesLoaded, BytesStored, GlobalRequests, GlobalTransactions;
    public long SharedRequests, SharedBankConflicts;

    private readonly Warp[] _warps;
    private readonly int _threads;
    private readonly long _limit;

    public Machine(PtxEntry entry, SimMemory memory, byte[] param, Dim3 grid, Dim3 block, int sharedSize, RaceDetector race, long warpInstructionLimit,
        ulong seed, long launch)
    {
        Seed = seed;
        _stream = Approx.Mix(seed ^ Approx.Mix((ulong)launch));
        Entry = entry;
        Memory = memory;
        Param = param;
        Grid = grid;
        BlockDim = block;
        SharedSize = sharedSize;
        Shared = new byte[sharedSize];
        Race = race;
        _limit = warpInstructionLimit;
        KindCounts = new long[entry.KindNames.Length];
        _threads = (int)block.Volume;
        int nw = (_threads + 31) / 32;
        _warps = new Warp[nw];
        _warpOrder = [.. Enumerable.Range(0, nw)];
        for (int wi = 0; wi < nw; wi++)
        {
            var w = new Warp(wi, entry.SlotCount);
            for (int c = 0; c < entry.ConstValues.Length; c++)
                Array.Fill(w.R, entry.ConstValues[c], (entry.ConstBase + c) * 32, 32);
            int lanes = Math.Min(32, _threads - wi * 32);
            w.Valid = lanes == 32 ? uint.MaxValue : (1u << lanes) - 1;
            _warps[wi] = w;
        }
    }

    public void Run()
    {
        ulong gx = Grid.X, gy = Grid.Y, n = gx * gy * Grid.Z;
        var order = new Permutation(n, NextRandom());
        for (ulong k = 0; k < n; k++)
        {
            ulong b = order[k];
            BlockIdx = new Dim3((uint)(b % gx), (uint)(b / gx % gy), (uint)(b / gx / gy));
            RunBlock();
        }
    }

    private void RunBlock()
    {
        foreach (var w in _warps) InitWarp(w);
        if (SharedSize > 0)
        {
            Shared.AsSpan().Fill(0xFF);        // uninitialised shared memory reads as NaN / -1
            Race.NewBlock(SharedSize);
        }
        while (true)
        {
            ShuffleWarps();
            foreach (int wi in _warpOrder) RunWarp(_warps[wi]);
            if (!ReleaseBarrier()) return;
        }
    }

    private void InitWarp(Warp w)
    {
        var r = w.R;
        Array.Clear(r, 0, Entry.UserSlots * 32);
        int sb = Entry.SpecialBase * 32;
        uint bx = BlockDim.X, by = BlockDim.Y;
        for (int l = 0; l < 32; l++)
        {
            uint lin = (uint)(w.Index * 32 + l);
            r[sb + 0 * 32 + l] = lin % bx;
            r[sb + 1 * 32 + l] = lin / bx % by;
            r[sb + 2 * 32 + l] = lin / (bx * by);
            r[sb + 3 * 32 + l] = BlockDim.X;
            r[sb + 4 * 32 + l] = BlockDim.Y;
            r[sb + 5 * 32 + l] = BlockDim.Z;
            r[sb + 6 * 32 + l] = BlockIdx.X;
            r[sb + 7 * 32 + l] = BlockIdx.Y;
            r[sb + 8 * 32 + l] = BlockIdx.Z;
            r[sb + 9 * 32 + l] = Grid.X;
            r[sb + 10 * 32 + l] = Grid.Y;
            r[sb + 11 * 32 + l] = Grid.Z;
            r[sb + 12 * 32 + l] = (uint)l;
            r[sb + 13 * 32 + l] = (uint)w.Index;
            r[sb + 14 * 32 + l] = (uint)_warps.Length;
            r[sb + 15 * 32 + l] = 1u << l;
            r[sb + 16 * 32 + l] = (1u << l) - 1;
            r[sb + 17 * 32 + l] = (uint)((2UL << l) - 1);
            r[sb + 18 * 32 + l] = ~(uint)((2UL << l) - 1);
            r[sb + 19 * 32 + l] = ~((1u << l) - 1);
        }
        w.Exited = 0;
        w.Waiting = 0;
        w.Uniform = true;
        w.Pc = 0;
    }

    private void RunWarp(Warp w)
    {
        var code = Entry.Code;
        var r = w.R;
        while (true)
        {
            uint runnable = w.Runnable;
            if (runnable == 0) return;
            int pc;
            uint mask;
            if (w.Uniform)
            {
                pc = w.Pc;
                mask = runnable;
            }
            else
            {
                pc = int.MaxValue;
                mask = 0;
                for (uint k = runnable; k != 0; k &= k - 1)
                {
                    int l = BitOperations.TrailingZeroCount(k);
                    int p = w.LanePc[l];
                    if (p < pc) { pc = p; mask = 1u << l; }
                    else if (p == pc) mask |= 1u << l;
                }
                if (mask == runnable)
                {
                    w.Uniform = true;
                    w.Pc = pc;
                }
            }
            if (pc >= code.Length)
            {
                // Falling off the end of the entry is an implicit exit.
                w.Diverge();
                w.Exited |= mask;
                continue;
            }
            var ins = code[pc];
            uint exec = mask;
            if (ins.Guard >= 0)
            {
                uint g = 0;
                int s = ins.Guard;
                for (uint k = mask; k != 0; k &= k - 1)
                {
                    int l = BitOperations.TrailingZeroCount(k);
                    if (r[s + l] != 0) g |= 1u << l;
                }
                exec = ins.GuardNot ? mask & ~g : g;
            }
            int n = BitOperations.PopCount(exec);
            KindCounts[ins.KindId] += n;
            Instructions += n;
            if (++WarpInstructions > _limit)
                throw new PtxSimException(
                    $"The launch exceeded {_limit:N0} warp instructions (PtxSimulator.WarpInstructionLimit); the kernel probably loops forever.",
                    Where(w, BitOperations.TrailingZeroCount(mask), ins));
            switch (ins.Flow)
            {
                case Flow.Normal:
                    ins.Exec!(this, w, ins, exec);
                    Advance(w, mask, pc + 1);
                    break;
                case Flow.Branch:
                    if (exec == mask) Advance(w, mask, ins.Target);
                    else if (exec == 0) Advance(w, mask, pc + 1);
                    else
                    {
                        if (ins.Uni)
                            throw new PtxSimException(
                                $"bra.uni is divergent: lanes 0x{exec:X8} take it and lanes 0x{mask & ~exec:X8} do not (use bra for divergent branches).",
                                Where(w, BitOperations.TrailingZeroCount(exec), ins));
                        w.Diverge();
                        Advance(w, exec, ins.Target);
                        Advance(w, mask & ~exec, pc + 1);
                    }
                    break;
                case Flow.Exit:
                    w.Exited |= exec;
                    Advance(w, mask & ~exec, pc + 1);
                    break;
                case Flow.Barrier:
                    if (exec != 0)
                    {
                        for (uint k = exec; k != 0; k &= k - 1) w.LanePc[BitOperations.TrailingZeroCount(k)] = pc;
                        w.Waiting |= exec;
                    }
                    Advance(w, mask & ~exec, pc + 1);
                    break;
            }
        }
    }

    /// <summary>Moves the lanes in mask to pc. In uniform mode mask is every runnable lane (or those left of them).</summary>
    private static void Advance(Warp w, uint mask, int pc)
    {
        if (w.Uniform)
        {
            w.Pc = pc;
            return;
        }
        for (uint k = mask; k != 0; k &= k - 1) w.LanePc[BitOperations.TrailingZeroCount(k)] = pc;
    }

    /// <summary>
    /// Called when no warp can run. Returns false when every thread has exited; releases the barrier when all
    /// waiting threads wait at the same one; otherwise the block is deadlocked.
    /// </summary>
    private bool ReleaseBarrier()
    {
        int barPc = -1;
        Warp? otherWarp = null;
        int otherLane = -1, otherPc = -1, waiting = 0;
        foreach (var w in _warps)
            for (uint k = w.Waiting; k != 0; k &= k - 1)
            {
                int l = BitOperations.TrailingZeroCount(k);
                waiting++;
                if (barPc < 0) barPc = w.LanePc[l];
                else if (w.LanePc[l] != barPc && otherWarp is null) { otherWarp = w; otherLane = l; otherPc = w.LanePc[l]; }
            }
        if (waiting == 0) return false;
        if (otherWarp is not null) throw Deadlock(barPc, otherWarp, otherLane, otherPc);
        var bar = Entry.Code[barPc];
        if (bar.Size > 0 && bar.Size != waiting)
            throw new PtxDeadlockException(
                $"Deadlock: bar.sync expects {bar.Size} threads but {waiting} arrived and every other thread has exited.",
                Where(FirstWaiting(), bar));
        foreach (var w in _warps)
        {
            if (w.Waiting == 0) continue;
            for (uint k = w.Waiting; k != 0; k &= k - 1) w.LanePc[BitOperations.TrailingZeroCount(k)]++;
            w.Waiting = 0;
            w.Uniform = false;
        }
        if (SharedSize > 0) Race.NewEpoch();
        return true;
    }

    private (Warp, int) FirstWaiting()
    {
        foreach (var w in _warps)
            if (w.Waiting != 0) return (w, BitOperations.TrailingZeroCount(w.Waiting));
        return (_warps[0], 0);
    }

    private PtxDeadlockException Deadlock(int barPc, Warp other, int otherLane, int otherPc)
    {
        var counts = new SortedDictionary<int, int>();
        int exited = 0;
        foreach (var w in _warps)
        {
            for (uint k = w.Waiting; k != 0; k &= k - 1)
            {
                int p = w.LanePc[BitOperations.TrailingZeroCount(k)];
                counts[p] = counts.GetValueOrDefault(p) + 1;
            }
            exited += BitOperations.PopCount(w.Exited & w.Valid);
        }
        var parts = new List<string>();
        foreach (var (p, c) in counts) parts.Add($"{c} thread(s) wait at line {Entry.Code[p].Line} ({Entry.Code[p].Text})");
        return new PtxDeadlockException(
            $"Deadlock: threads of the block wait at different barriers that the others never reach: {string.Join("; ", parts)}; {exited} thread(s) exited. "
            + "A bar.sync must be reached by every thread of the block (do not put it in a branch only some threads take).",
            Where(other, otherLane, Entry.Code[otherPc]));
    }

    /// <summary>%tid of lane l of warp w.</summary>
    public Dim3 ThreadOf(Warp w, int lane)
    {
        uint lin = (uint)(w.Index * 32 + lane);
        return new Dim3(lin % BlockDim.X, lin / BlockDim.X % BlockDim.Y, lin / (BlockDim.X * BlockDim.Y));
    }

    public PtxLocation Where(Warp w, int lane, Instr ins) =>
        new(Entry.SourceName, Entry.Name, ins.Line, ins.Text, true, BlockIdx, ThreadOf(w, lane));

    private PtxLocation Where((Warp W, int Lane) t, Instr ins) => Where(t.W, t.Lane, ins);

    /// <summary>Describes a linear thread index of the current block as %tid.</summary>
    public Dim3 ThreadOfLinear(int lin) =>
        new((uint)lin % BlockDim.X, (uint)lin / BlockDim.X % BlockDim.Y, (uint)lin / (BlockDim.X * BlockDim.Y));
}
