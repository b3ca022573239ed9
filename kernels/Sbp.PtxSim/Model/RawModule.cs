namespace Sbp.PtxSim.Model;

/// <summary>
/// A `.param` of an entry: a scalar (Count 0) or an array of Count elements, e.g. `.param .align 4 .b8 meta[256]`
/// (a struct passed by value). Align is the declared alignment, or the element's natural one.
/// </summary>
internal sealed record ParamDecl(string Name, PtxType Type, int Align, int Count, int Line)
{
    public bool IsArray => Count > 0;

    /// <summary>Bytes the param occupies in the param buffer (and a launch must supply).</summary>
    public int Bytes => IsArray ? Count * Type.Bytes() : Type.Bytes();

    /// <summary>As declared, for messages: ".u32 n" or ".align 4 .b8 meta[256]".</summary>
    public string Declaration =>
        (Align != Type.Bytes() ? $".align {Align} " : "") + $".{Type.Name()} {Name}" + (IsArray ? $"[{Count}]" : "");
}

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
