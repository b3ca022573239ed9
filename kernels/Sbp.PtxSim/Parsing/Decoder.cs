using Sbp.PtxSim.Model;

namespace Sbp.PtxSim.Parsing;

/// <summary>
/// Turns a parsed entry into executable form: assigns register slots (user registers, then special registers, then
/// constants), lays out params and shared memory (the static variables the entry references, then the dynamic
/// `.extern .shared` region), resolves labels and decodes every instruction (see Decoder.*.cs per family).
/// </summary>
internal sealed partial class Decoder
{
    private readonly RawEntry _e;
    private readonly string _source;
    private readonly Dictionary<string, int> _regSlot = [];
    private readonly Dictionary<string, PtxType> _regType = [];
    private readonly Dictionary<ulong, int> _constIndex = [];
    private readonly List<ulong> _consts = [];
    private readonly Dictionary<string, int> _paramOffset = [];
    private readonly Dictionary<string, long> _sharedAddress = [];
    private readonly Dictionary<string, int> _labels = [];
    private readonly Dictionary<string, int> _kinds = [];
    private readonly List<string> _kindNames = [];
    private int _userSlots, _specialBase, _constBase, _sinkSlot, _paramBytes;
    private RawInstruction? _cur;

    private Decoder(RawEntry entry, string sourceName)
    {
        _e = entry;
        _source = sourceName;
    }

    public static PtxEntry Decode(RawEntry entry, IReadOnlyList<SharedDecl> moduleShared, string sourceName)
    {
        var d = new Decoder(entry, sourceName);
        return d.Run(moduleShared);
    }

    private PtxEntry Run(IReadOnlyList<SharedDecl> moduleShared)
    {
        foreach (var r in _e.Regs)
        {
            _regSlot[r.Key] = _userSlots++;
            _regType[r.Key] = r.Type;
        }
        _sinkSlot = _userSlots++;
        _specialBase = _userSlots;
        _constBase = _specialBase + Special.Count;

        var offsets = LayoutParams();

        var (staticBytes, dynOffset, dynAlign) = LayoutShared(moduleShared);

        foreach (var l in _e.Labels) _labels[l.Name] = l.InstructionIndex;

        var code = new Instr[_e.Body.Count];
        for (int k = 0; k < code.Length; k++)
        {
            _cur = _e.Body[k];
            var ins = DecodeOne(_cur);
            ins.Pc = k;
            ins.Line = _cur.Line;
            if (!_kinds.TryGetValue(ins.Kind, out int id))
            {
                id = _kindNames.Count;
                _kinds[ins.Kind] = id;
                _kindNames.Add(ins.Kind);
            }
            ins.KindId = id;
            code[k] = ins;
        }

        return new PtxEntry
        {
            Name = _e.Name, SourceName = _source, Line = _e.Line, Code = code,
            Params = [.. _e.Params], ParamOffsets = offsets, ParamBytes = _paramBytes,
            UserSlots = _userSlots, SpecialBase = _specialBase, ConstBase = _constBase,
            ConstValues = [.. _consts], SlotCount = _constBase + _consts.Count,
            StaticSharedBytes = staticBytes, DynamicSharedOffset = dynOffset, DynamicSharedAlign = dynAlign,
            ReqNtid = _e.ReqNtid, MaxNtid = _e.MaxNtid, KindNames = [.. _kindNames],
        };
    }

    /// <summary>Param offsets in declaration order, each aligned to its declared (or natural) alignment, as the CUDA
    /// driver lays out the parameter buffer; sets the total size (the end of the last param).</summary>
    private int[] LayoutParams()
    {
        var offsets = new int[_e.Params.Count];
        int end = 0;
        for (int k = 0; k < offsets.Length; k++)
        {
            var p = _e.Params[k];
            int offset = (end + p.Align - 1) / p.Align * p.Align;
            if (!_paramOffset.TryAdd(p.Name, offset)) throw Parse($"parameter {p.Name} is declared twice", p.Line);
            offsets[k] = offset;
            end = offset + p.Bytes;
            if (end > Parser.MaxParamBytes)
                throw Parse($"the parameters of {_e.Name} take {end} bytes, more than CUDA's limit of {Parser.MaxParamBytes}", p.Line);
        }
        _paramBytes = end;
        return offsets;
    }

    /// <summary>Static shared variables referenced by this entry (its own always), in declaration order, then the
    /// dynamic region (every `.extern .shared` name aliases it).</summary>
    private (int Static, int DynOffset, int DynAlign) LayoutShared(IReadOnlyList<SharedDecl> moduleShared)
    {
        var referenced = new HashSet<string>();
        foreach (var ins in _e.Body)
            foreach (var o in ins.Operands) Collect(o);
        var decls = new List<SharedDecl>();
        var local = new HashSet<string>();
        foreach (var s in _e.Shared)
        {
            if (!local.Add(s.Name)) throw Parse($"shared variable {s.Name} is declared twice", s.Line);
            decls.Add(s);
        }
        foreach (var s in moduleShared)
            if (!local.Contains(s.Name) && (referenced.Contains(s.Name) || s.Extern)) decls.Add(s);

        long offset = 0;
        int dynAlign = 16;
        foreach (var s in decls)
        {
            if (s.Extern) { dynAlign = Math.Max(dynAlign, s.Align); continue; }
            offset = (offset + s.Align - 1) / s.Align * s.Align;
            _sharedAddress[s.Name] = offset;
            offset += s.Bytes;
            if (offset > int.MaxValue / 2) throw Parse($"shared variable {s.Name} is too large", s.Line);
        }
        long dyn = (offset + dynAlign - 1) / dynAlign * dynAlign;
        foreach (var s in decls)
            if (s.Extern) _sharedAddress[s.Name] = dyn;
        return ((int)offset, (int)dyn, dynAlign);

        void Collect(Operand o)
        {
            if (o.Kind is OperandKind.Name or OperandKind.Address) referenced.Add(o.Name);
            foreach (var i in o.Items) Collect(i);
        }
    }

    // ---- operands -------------------------------------------------------------------------------------------

    private int Const(ulong value)
    {
        if (!_constIndex.TryGetValue(value, out int k))
        {
            k = _consts.Count;
            _consts.Add(value);
            _constIndex[value] = k;
        }
        return (_constBase + k) * 32;
    }

    private bool IsRegister(Operand o) => o.Kind == OperandKind.Name && _regSlot.ContainsKey(o.Name);

    private PtxType RegType(Operand o) => _regType[o.Name];

    /// <summary>Width in bits of a destination register (for masking loads and conversions).</summary>
    private int RegBits(Operand o) => o.Kind == OperandKind.Name && o.Name == "_" ? 64 : Math.Max(RegType(o).Bits(), 8);

    /// <summary>A destination register (value, not predicate); "_" is a sink.</summary>
    private int Dst(Operand o, bool pred = false)
    {
        if (o.Kind == OperandKind.Name && o.Name == "_" && !pred) return _sinkSlot * 32;
        if (o.Kind != OperandKind.Name || o.Not) throw Parse($"destination must be a register, found '{o}'");
        if (!_regSlot.TryGetValue(o.Name, out int slot))
        {
            if (Special.IndexOf(o.Name) >= 0) throw Parse($"special register {o.Name} is read-only");
            throw Parse($"register {o.Name} is not declared");
        }
        CheckPred(o, pred);
        return slot * 32;
    }

    private void CheckPred(Operand o, bool pred)
    {
        bool isPred = _regType[o.Name] == PtxType.Pred;
        if (pred && !isPred) throw Parse($"{o.Name} must be a .pred register");
        if (!pred && isPred) throw Parse($"predicate {o.Name} used where a value register is required");
    }

    /// <summary>A predicate source ("%p" or "!%p"): slot base and negation.</summary>
    private int PredSrc(Operand o, out bool not)
    {
        not = o.Not;
        if (o.Kind == OperandKind.Immediate && Parsing.Literals.TryParseInteger(o.ImmText, out long v) && !o.ImmNegative && v is 0 or 1)
            return Const((ulong)v);
        if (o.Kind != OperandKind.Name) throw Parse($"expected a predicate, found '{o}'");
        if (!_regSlot.TryGetValue(o.Name, out int slot)) throw Parse($"predicate {o.Name} is not declared");
        CheckPred(o, true);
        return slot * 32;
    }

    /// <summary>A value source of the given type: register, special register, immediate or shared-symbol address.</summary>
    private int Src(Operand o, PtxType t)
    {
        switch (o.Kind)
        {
            case OperandKind.Immediate:
                return Const(Immediate(o, t));
            case OperandKind.Name:
                if (o.Not) throw Parse($"'!' is only allowed on predicate operands, found '{o}'");
                if (_regSlot.TryGetValue(o.Name, out int slot))
                {
                    CheckPred(o, t == PtxType.Pred);
                    return slot * 32;
                }
                int sp = Special.IndexOf(o.Name);
                if (sp >= 0) return (_specialBase + sp) * 32;
                if (_sharedAddress.TryGetValue(o.Name, out long addr)) return Const((ulong)addr & PtxTypes.Mask(Math.Max(t.Bits(), 32)));
                if (o.Name == "WARP_SZ") return Const(32);
                if (_paramOffset.ContainsKey(o.Name))
                    throw Unsupported($"the address of parameter {o.Name} can only be taken with mov.u64/.b64/.s64 (or read the value with ld.param)");
                if (o.Name.StartsWith('%')) throw o.Name.Contains('.') || Special.IndexOf(o.Name + ".x") >= 0 || IsKnownUnsupportedSpecial(o.Name)
                    ? Unsupported($"special register {o.Name} is not supported")
                    : Parse($"register {o.Name} is not declared");
                throw Parse($"unknown symbol '{o.Name}' (not a register, shared variable or parameter)");
            default:
                throw Parse($"expected a register or immediate, found '{o}'");
        }
    }

    private static bool IsKnownUnsupportedSpecial(string n) =>
        n is "%clock" or "%clock64" or "%smid" or "%nsmid" or "%gridid" or "%globaltimer" or "%dynamic_smem_size" or "%total_smem_size";

    /// <summary>Bits of an immediate for an operand of type t (integers wrap to the width; f32 literals as bits).</summary>
    private ulong Immediate(Operand o, PtxType t)
    {
        string s = o.ImmText;
        if (Literals.IsFloatLiteral(s))
        {
            if (!Literals.TryParseFloat(s, out double d, out bool single, out uint sbits)) throw Parse($"bad float literal '{s}'");
            if (o.ImmNegative) { d = -d; sbits ^= 0x80000000u; }
            if (t == PtxType.F32 || (t is PtxType.B32 && single))
                return single ? sbits : BitConverter.SingleToUInt32Bits((float)d);
            if (t is PtxType.F64 or PtxType.B64) return BitConverter.DoubleToUInt64Bits(d);
            throw Parse($"float literal '{s}' used as a .{t.Name()} operand");
        }
        if (!Literals.TryParseInteger(s, out long v)) throw Parse($"bad integer literal '{s}'");
        if (o.ImmNegative) v = unchecked(-v);
        if (t == PtxType.F32) return BitConverter.SingleToUInt32Bits(v);
        int bits = t == PtxType.Pred ? 1 : Math.Max(t.Bits(), 8);
        return (ulong)v & PtxTypes.Mask(bits);
    }

    /// <summary>"[reg+off]", "[symbol+off]" or "[imm]": (address register slot base or -1, offset).</summary>
    private (int Base, long Offset) Address(Operand o, string space)
    {
        if (o.Kind != OperandKind.Address) throw Parse($"expected an address [..], found '{o}'");
        if (o.Name.Length == 0) return (-1, o.Offset);
        if (_regSlot.ContainsKey(o.Name))
        {
            var rt = _regType[o.Name];
            if (rt == PtxType.Pred || rt.Bits() < 32) throw Parse($"address register {o.Name} must be 32 or 64 bits");
            return (_regSlot[o.Name] * 32, o.Offset);
        }
        if (space == "shared" && _sharedAddress.TryGetValue(o.Name, out long a)) return (-1, a + o.Offset);
        if (space == "param" && _paramOffset.TryGetValue(o.Name, out int p)) return (-1, p + o.Offset);
        if (_sharedAddress.ContainsKey(o.Name)) throw Parse($"{o.Name} is a shared variable; access it with .shared, not .{space}");
        if (_paramOffset.ContainsKey(o.Name)) throw Parse($"{o.Name} is a parameter; access it with ld.param");
        throw Parse($"unknown address base '{o.Name}'");
    }

    private int Label(Operand o)
    {
        if (o.Kind != OperandKind.Name || !_labels.TryGetValue(o.Name, out int pc))
            throw Parse($"unknown branch target '{o}'");
        return pc;
    }

    // ---- errors ----------------------------------------------------------------------------------------------

    private PtxLocation Here(int line = 0)
    {
        int l = line > 0 ? line : _cur?.Line ?? _e.Line;
        string text = line > 0 || _cur is null ? string.Empty : _cur.Text;
        return new PtxLocation(_source, _e.Name, l, text);
    }

    private PtxParseException Parse(string what, int line = 0) => new($"PTX parse error: {what}.", Here(line));

    private PtxUnsupportedInstructionException Unsupported(string what) => new($"Unsupported PTX instruction: {what}.", Here());
}
