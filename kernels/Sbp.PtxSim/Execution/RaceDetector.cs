namespace Sbp.PtxSim.Execution;

/// <summary>
/// Shared-memory race detection. Per byte it remembers the last write (warp, thread, pc, barrier epoch) and the
/// reads since the last barrier (first reading warp, whether several warps read). An access by a different warp
/// that conflicts with one in the same epoch (write-read, read-write, write-write) is a race; threads of one warp
/// are never reported (they execute each instruction together). Epochs advance at every barrier release and every
/// new block, so nothing has to be cleared. Atomics are not tracked.
/// </summary>
internal sealed class RaceDetector
{
    private struct Cell
    {
        public int WEpoch, WWarp, WThread, WPc;
        public int REpoch, RWarp, RThread, RPc;
        public int RThread2, RPc2;          // a reader from another warp than RWarp (valid when RMulti)
        public bool RMulti;
    }

    /// <summary>The earlier access that conflicts.</summary>
    public readonly record struct Conflict(bool OtherIsWrite, int OtherThread, int OtherPc, int Address);

    private Cell[] _cells = [];
    private int _epoch;

    /// <summary>Prepares for a block with <paramref name="bytes"/> bytes of shared memory.</summary>
    public void NewBlock(int bytes)
    {
        if (_cells.Length < bytes) _cells = new Cell[Math.Max(bytes, _cells.Length * 2)];
        NewEpoch();
    }

    /// <summary>Called when a barrier releases: accesses before it can no longer race with accesses after it.</summary>
    public void NewEpoch()
    {
        if (++_epoch == int.MaxValue)
        {
            Array.Clear(_cells);
            _epoch = 1;
        }
    }

    public Conflict? Read(int address, int size, int warp, int thread, int pc)
    {
        var cells = _cells;
        int e = _epoch;
        for (int a = address; a < address + size; a++)
        {
            ref var c = ref cells[a];
            if (c.WEpoch == e && c.WWarp != warp) return new Conflict(true, c.WThread, c.WPc, a);
            if (c.REpoch != e) { c.REpoch = e; c.RWarp = warp; c.RThread = thread; c.RPc = pc; c.RMulti = false; }
            else if (c.RWarp != warp && !c.RMulti) { c.RMulti = true; c.RThread2 = thread; c.RPc2 = pc; }
        }
        return null;
    }

    public Conflict? Write(int address, int size, int warp, int thread, int pc)
    {
        var cells = _cells;
        int e = _epoch;
        for (int a = address; a < address + size; a++)
        {
            ref var c = ref cells[a];
            if (c.WEpoch == e && c.WWarp != warp) return new Conflict(true, c.WThread, c.WPc, a);
            if (c.REpoch == e && c.RWarp != warp) return new Conflict(false, c.RThread, c.RPc, a);
            if (c.REpoch == e && c.RMulti) return new Conflict(false, c.RThread2, c.RPc2, a);
            c.WEpoch = e; c.WWarp = warp; c.WThread = thread; c.WPc = pc;
        }
        return null;
    }
}
