namespace Sbp.PtxSim.Model;

/// <summary>A `.param` of an entry.</summary>
internal sealed record ParamDecl(string Name, PtxType Type, int Line);

/// <summary>A `.shared` variable; Count is -1 for the dynamic `.extern .shared name[]`.</summary>
internal sealed record SharedDecl(string Name, PtxType Type, int Align, long Count, bool Extern, int Line)
{
    public long Bytes => Count < 0 ? 0 : Count * Type.Bytes();
}

/// <summary>A register after scope resolution: unique key, declared type.</summary>
internal sealed record RegDecl(string Key, PtxType Type, int Line);

/// <summary>A label: the index of the next instruction in the entry body.</summary>
internal sealed record LabelDecl(string Name, int InstructionIndex, int Line);

/// <summary>An entry as parsed, before decoding.</summary>
internal sealed class RawEntry
{
    public required string Name;
    public int Line;
    public List<ParamDecl> Params = [];
    public List<RegDecl> Regs = [];
    public List<SharedDecl> Shared = [];
    public List<RawInstruction> Body = [];
    public List<LabelDecl> Labels = [];
    public Dim3? ReqNtid;
    public Dim3? MaxNtid;
}
