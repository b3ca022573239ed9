using Sbp.PtxSim.Model;

namespace Sbp.PtxSim.Execution;

/// <summary>Error messages for memory violations and races, with the kernel / block / thread / line context.</summary>
internal sealed partial class Machine
{
    public PtxMemoryViolationException GlobalOutOfBounds(Warp w, int lane, Instr i, ulong address, int size, bool write) =>
        new($"Out-of-bounds global {(write ? "store" : "load")}: {size} bytes at 0x{address:X} are not inside a live allocation. {Memory.Describe(address, size)}",
            Where(w, lane, i));

    public PtxMemoryViolationException Misaligned(Warp w, int lane, Instr i, string space, ulong address, int size, bool write) =>
        new($"Misaligned {space} {(write ? "store" : "load")}: the {size}-byte access at {(space == "global" ? $"0x{address:X}" : address.ToString(System.Globalization.CultureInfo.InvariantCulture))} is not {size}-byte aligned.",
            Where(w, lane, i));

    public PtxMemoryViolationException SharedOutOfBounds(Warp w, int lane, Instr i, ulong address, int size, bool write) =>
        new($"Out-of-bounds shared {(write ? "store" : "load")}: {size} bytes at shared address {(long)address} are outside the block's {SharedSize} bytes "
            + $"of shared memory (static {Entry.StaticSharedBytes}, dynamic {SharedSize - Entry.DynamicSharedOffset} from offset {Entry.DynamicSharedOffset}).",
            Where(w, lane, i));

    public PtxMemoryViolationException ParamOutOfBounds(Warp w, int lane, Instr i, ulong address, int size) =>
        new($"Out-of-bounds param load in kernel {Entry.Name}: {size} bytes at param address {(long)address} are outside its {Entry.ParamBytes} bytes "
            + $"of parameters ({string.Join(", ", Entry.Params.Select((p, k) => $"{p.Declaration} at {Entry.ParamOffsets[k]}"))}).",
            Where(w, lane, i));

    public PtxRaceException SharedRace(Warp w, int lane, Instr i, RaceDetector.Conflict c, bool write)
    {
        var other = Entry.Code[c.OtherPc];
        int otherWarp = c.OtherThread / 32;
        string mine = write ? "writes" : "reads";
        string theirs = c.OtherIsWrite ? "wrote" : "read";
        return new PtxRaceException(
            $"Shared-memory race: thread {ThreadOf(w, lane)} (warp {w.Index}) {mine} shared byte {c.Address} that thread {ThreadOfLinear(c.OtherThread)} "
            + $"(warp {otherWarp}) {theirs} at line {other.Line} ({other.Text}) with no bar.sync between them.",
            Where(w, lane, i));
    }
}
