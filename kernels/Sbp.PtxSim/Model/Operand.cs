namespace Sbp.PtxSim.Model;

internal enum OperandKind : byte { Name, Immediate, Address, Vector, Pair }

/// <summary>
/// An operand as written: a name (register, special register, symbol or label, optionally '!'-negated), an
/// immediate (raw text, decoded by the instruction's type), an address "[base+offset]", a vector "{a, b}" or a
/// "d|p" destination pair.
/// </summary>
internal sealed class Operand
{
    public OperandKind Kind;
    public string Name = string.Empty;        // Name; Address base (empty: absolute address)
    public bool Not;                          // "!%p"
    public string ImmText = string.Empty;     // Immediate
    public bool ImmNegative;                  // Immediate written with a leading '-'
    public long Offset;                       // Address
    public List<Operand> Items = [];          // Vector / Pair

    public override string ToString() => Kind switch
    {
        OperandKind.Name => (Not ? "!" : "") + Name,
        OperandKind.Immediate => (ImmNegative ? "-" : "") + ImmText,
        OperandKind.Address => $"[{Name}{(Offset != 0 ? (Offset > 0 ? "+" : "") + Offset : "")}]",
        OperandKind.Vector => "{" + string.Join(", ", Items) + "}",
        _ => string.Join("|", Items),
    };
}

/// <summary>One instruction statement before decoding.</summary>
internal sealed class RawInstruction
{
    public required string Opcode;
    public required List<Operand> Operands;
    public string? Guard;
    public bool GuardNot;
    public int Line;
    public required string Text;
}
