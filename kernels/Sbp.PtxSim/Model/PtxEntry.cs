namespace Sbp.PtxSim.Model;

/// <summary>A decoded entry: code, register-file layout, params and shared-memory layout.</summary>
internal sealed class PtxEntry
{
    public required string Name;
    public required string SourceName;
    public int Line;
    public required Instr[] Code;
    public required ParamDecl[] Params;
    public required int[] ParamOffsets;
    public int ParamBytes;

    public int SlotCount;                 // user registers + specials + constants
    public int UserSlots;                 // [0, UserSlots): registers (zeroed per block)
    public int SpecialBase;               // [SpecialBase, SpecialBase + Special.Count): special registers
    public required ulong[] ConstValues;  // slots [SpecialBase + Special.Count, ...)
    public int ConstBase;

    public int StaticSharedBytes;         // static shared variables referenced by this entry
    public int DynamicSharedOffset;       // where .extern .shared starts (aligned end of the static part)
    public int DynamicSharedAlign = 1;

    public Dim3? ReqNtid, MaxNtid;
    public required string[] KindNames;   // stats keys by Instr.KindId
}

/// <summary>Special registers, in their slot order after the user registers.</summary>
internal static class Special
{
    public static readonly string[] Names =
    [
        "%tid.x", "%tid.y", "%tid.z", "%ntid.x", "%ntid.y", "%ntid.z",
        "%ctaid.x", "%ctaid.y", "%ctaid.z", "%nctaid.x", "%nctaid.y", "%nctaid.z",
        "%laneid", "%warpid", "%nwarpid",
        "%lanemask_eq", "%lanemask_lt", "%lanemask_le", "%lanemask_gt", "%lanemask_ge",
    ];

    public static int Count => Names.Length;

    public static int IndexOf(string name) => Array.IndexOf(Names, name);
}
