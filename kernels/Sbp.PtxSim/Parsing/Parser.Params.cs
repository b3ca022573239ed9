using Sbp.PtxSim.Model;

namespace Sbp.PtxSim.Parsing;

/// <summary>Kernel parameter declarations: scalars and byte arrays (structs passed by value).</summary>
internal sealed partial class Parser
{
    /// <summary>CUDA's limit on a kernel's parameters (Volta and later, CUDA 12.1+).</summary>
    public const int MaxParamBytes = 32764;

    private const string ParamForms =
        "supported forms: '.param .u32/.s32/.b32/.f32/.u64/.s64/.b64 name' and '.param [.align N] .b8 name[K]'";

    /// <summary>`.param [.align N] .type name` or `.param [.align N] .type name[K]`.</summary>
    private ParamDecl ParseParam()
    {
        var pt = Cur;
        if (!pt.IsIdent(".param")) throw Error($"expected '.param', found {pt}", pt.Line);
        int line = pt.Line;
        _p++;
        int align = 0;
        if (Cur.IsIdent(".align"))
        {
            _p++;
            long a = ParseNumberToken();
            if (a <= 0 || (a & (a - 1)) != 0 || a > 4096) throw Error($"kernel parameter .align {a} must be a power of two up to 4096", line);
            align = (int)a;
        }
        RefuseQualifier(line);
        var type = ParseTypeToken();
        RefuseQualifier(line);
        var name = ExpectIdent("parameter name");
        int count = 0;
        if (Cur.Is('['))
        {
            _p++;
            if (Cur.Is(']')) throw Error($"array kernel parameter {name.Text}[] needs a size", line);
            long n = ParseNumberToken();
            Expect(']');
            if (Cur.Is('[')) throw Unsupported($"multi-dimensional array kernel parameter {name.Text} is not supported ({ParamForms})", line);
            if (type is PtxType.Pred or PtxType.F16 or PtxType.F64)
                throw Unsupported($"array kernel parameter {name.Text} of .{type.Name()} is not supported ({ParamForms})", line);
            if (n < 1 || n * type.Bytes() > MaxParamBytes)
                throw Error($"array kernel parameter {name.Text}[{n}] must have between 1 and {MaxParamBytes / type.Bytes()} elements", line);
            count = (int)n;
        }
        else if (type.Bits() is not (32 or 64) || type == PtxType.F64)
            throw Unsupported($"kernel parameter type .{type.Name()} is not supported (use .u32/.s32/.b32/.f32/.u64/.s64/.b64)", line);
        if (align == 0) align = type.Bytes();
        if (align < type.Bytes())
            throw Error($"kernel parameter {name.Text}: .align {align} is less than the {type.Bytes()}-byte size of .{type.Name()}", line);
        return new ParamDecl(name.Text, type, align, count, line);
    }

    /// <summary>Refuses `.ptr`, state spaces and other qualifiers the simulator does not model.</summary>
    private void RefuseQualifier(int line)
    {
        var q = Cur;
        if (q.Kind != TokenKind.Ident || !q.Text.StartsWith('.') || PtxTypes.Parse(q.Text[1..]) != PtxType.None) return;
        throw q.Text.StartsWith(".ptr", StringComparison.Ordinal) || q.Text == ".align"
            ? Unsupported($"'{q.Text}' in a kernel parameter declaration is not supported ({ParamForms})", line)
            : Error($"unexpected '{q.Text}' in a kernel parameter declaration ({ParamForms})", line);
    }
}
