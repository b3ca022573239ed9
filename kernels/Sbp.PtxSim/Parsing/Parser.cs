using System.Globalization;
using Sbp.PtxSim.Model;

namespace Sbp.PtxSim.Parsing;

/// <summary>
/// Parses the module structure: header directives, module-level shared variables and `.entry` functions with their
/// params, performance directives, register declarations (with ranges and nested scopes), shared declarations,
/// labels and instruction statements. Instructions stay undecoded here (see <see cref="Decoder"/>).
/// </summary>
internal sealed partial class Parser
{
    private readonly List<Token> _t;
    private readonly string _source;
    private readonly string[] _lines;
    private int _p;
    private string _kernel = string.Empty;

    public List<RawEntry> Entries { get; } = [];
    public List<SharedDecl> ModuleShared { get; } = [];

    public Parser(string text, string sourceName)
    {
        _source = sourceName;
        _lines = text.Split('\n');
        _t = Lexer.Tokenize(text, sourceName, _lines);
    }

    public string[] Lines => _lines;

    private Token Cur => _t[_p];
    private Token Next() => _t[_p++];

    public void ParseModule()
    {
        while (Cur.Kind != TokenKind.End)
        {
            var tok = Cur;
            if (tok.Kind != TokenKind.Ident) throw Error($"expected a directive, found {tok}", tok.Line);
            switch (tok.Text)
            {
                case ".version":
                case ".target":
                case ".address_size":
                case ".file":
                case ".loc":
                    SkipLine(tok.Line);
                    break;
                case ".pragma":
                    SkipStatement();
                    break;
                case ".visible":
                case ".weak":
                    _p++;
                    break;
                case ".entry":
                    ParseEntry();
                    break;
                case ".extern":
                    _p++;
                    if (!Cur.IsIdent(".shared")) throw Error($"only '.extern .shared' is supported, found .extern {Cur.Text}", tok.Line);
                    ModuleShared.Add(ParseShared(isExtern: true));
                    break;
                case ".shared":
                    ModuleShared.Add(ParseShared(isExtern: false));
                    break;
                case ".func":
                    throw Unsupported("device functions (.func) and calls are not supported by the simulator", tok.Line);
                case ".global":
                case ".const":
                case ".local":
                case ".tex":
                case ".surf":
                case ".samplerref":
                    throw Unsupported($"module-level {tok.Text} variables are not supported by the simulator", tok.Line);
                default:
                    throw Error($"unknown or unsupported directive '{tok.Text}'", tok.Line);
            }
        }
    }

    private void ParseEntry()
    {
        int line = Next().Line;                 // .entry
        var name = ExpectIdent("entry name");
        _kernel = name.Text;
        var entry = new RawEntry { Name = name.Text, Line = line };
        Expect('(');
        if (!Cur.Is(')'))
        {
            while (true)
            {
                entry.Params.Add(ParseParam());
                if (Cur.Is(',')) { _p++; continue; }
                break;
            }
        }
        Expect(')');
        // Performance-tuning directives.
        while (Cur.Kind == TokenKind.Ident && Cur.Text.StartsWith('.'))
        {
            var d = Next();
            switch (d.Text)
            {
                case ".maxntid": entry.MaxNtid = ParseDim3(); break;
                case ".reqntid": entry.ReqNtid = ParseDim3(); break;
                case ".minnctapersm":
                case ".maxnctapersm":
                case ".maxnreg":
                case ".maxclusterrank":
                    ParseNumberToken();
                    break;
                case ".noreturn":
                    break;
                case ".pragma":
                    _p--;
                    SkipStatement();
                    break;
                default:
                    throw Error($"unknown entry directive '{d.Text}'", d.Line);
            }
        }
        Expect('{');
        var scopes = new List<Dictionary<string, RegDecl>> { new() };
        var allKeys = new HashSet<string>();
        int depth = 1;
        while (depth > 0)
        {
            var tok = Cur;
            if (tok.Kind == TokenKind.End) throw Error($"missing '}}' closing entry {entry.Name}", entry.Line);
            if (tok.Is('{')) { _p++; depth++; scopes.Add([]); continue; }
            if (tok.Is('}')) { _p++; depth--; scopes.RemoveAt(scopes.Count - 1); continue; }
            if (tok.Kind == TokenKind.Ident && tok.Text.StartsWith('.'))
            {
                switch (tok.Text)
                {
                    case ".reg": ParseRegs(entry, scopes, allKeys); break;
                    case ".shared": entry.Shared.Add(ParseShared(isExtern: false)); break;
                    case ".extern":
                        _p++;
                        if (!Cur.IsIdent(".shared")) throw Error("only '.extern .shared' is supported", tok.Line);
                        entry.Shared.Add(ParseShared(isExtern: true));
                        break;
                    case ".loc":
                    case ".file":
                        SkipLine(tok.Line);
                        break;
                    case ".pragma":
                        SkipStatement();
                        break;
                    case ".local":
                        throw Unsupported("local memory (.local) is not supported (kernels must not spill or use local arrays)", tok.Line);
                    case ".param":
                    case ".const":
                    case ".global":
                        throw Unsupported($"{tok.Text} declarations inside an entry are not supported", tok.Line);
                    default:
                        throw Error($"unknown directive '{tok.Text}' inside entry {entry.Name}", tok.Line);
                }
                continue;
            }
            if (tok.Kind == TokenKind.Ident && _t[_p + 1].Is(':'))
            {
                if (entry.Labels.Exists(l => l.Name == tok.Text)) throw Error($"label {tok.Text} is defined twice", tok.Line);
                entry.Labels.Add(new LabelDecl(tok.Text, entry.Body.Count, tok.Line));
                _p += 2;
                continue;
            }
            entry.Body.Add(ParseInstruction(scopes));
        }
        Entries.Add(entry);
        _kernel = string.Empty;
    }

    private void ParseRegs(RawEntry entry, List<Dictionary<string, RegDecl>> scopes, HashSet<string> allKeys)
    {
        int line = Next().Line;                 // .reg
        if (Cur.Kind == TokenKind.Ident && Cur.Text is ".v2" or ".v4")
            throw Unsupported("vector registers (.reg .v2/.v4) are not supported", line);
        var type = ParseTypeToken();
        if (type is PtxType.F16 or PtxType.F64)
            throw Unsupported($".reg .{type.Name()}: {type.Name()} is not supported by the simulator", line);
        while (true)
        {
            var n = ExpectIdent("register name");
            if (Cur.Is('<'))
            {
                _p++;
                long count = ParseNumberToken();
                Expect('>');
                if (count is < 0 or > 100000) throw Error($"register range {n.Text}<{count}> is out of range", line);
                for (int k = 0; k < count; k++) Declare(n.Text + k.ToString(CultureInfo.InvariantCulture));
            }
            else Declare(n.Text);
            if (Cur.Is(',')) { _p++; continue; }
            break;
        }
        Expect(';');

        void Declare(string name)
        {
            var scope = scopes[^1];
            if (scope.ContainsKey(name)) throw Error($"register {name} is declared twice in the same scope", line);
            string key = name;
            for (int s = 1; allKeys.Contains(key); s++) key = name + "#" + s.ToString(CultureInfo.InvariantCulture);
            allKeys.Add(key);
            var decl = new RegDecl(key, type, line);
            scope[name] = decl;
            entry.Regs.Add(decl);
        }
    }

    private SharedDecl ParseShared(bool isExtern)
    {
        int line = Next().Line;                 // .shared
        int align = 0;
        if (Cur.IsIdent(".align"))
        {
            _p++;
            long a = ParseNumberToken();
            if (a <= 0 || (a & (a - 1)) != 0 || a > 4096) throw Error($".align {a} must be a power of two up to 4096", line);
            align = (int)a;
        }
        var type = ParseTypeToken();
        if (type == PtxType.Pred) throw Error(".shared .pred is not allowed", line);
        var name = ExpectIdent("shared variable name");
        long count = 1;
        bool dynamic = false;
        if (Cur.Is('['))
        {
            count = 1;
            while (Cur.Is('['))
            {
                _p++;
                if (Cur.Is(']'))
                {
                    if (!isExtern) throw Error($"shared array {name.Text}[] needs a size unless it is '.extern .shared'", line);
                    dynamic = true;
                    _p++;
                    continue;
                }
                long n = ParseNumberToken();
                if (n <= 0) throw Error($"shared array {name.Text} has size {n}", line);
                count *= n;
                Expect(']');
            }
        }
        if (isExtern && !dynamic) throw Error($"'.extern .shared {name.Text}' must be an unsized array (dynamic shared memory)", line);
        if (Cur.Is('=')) throw Unsupported("initialisers on .shared variables are not allowed", line);
        Expect(';');
        if (align == 0) align = type.Bytes();
        return new SharedDecl(name.Text, type, align, dynamic ? -1 : count, isExtern, line);
    }

    private RawInstruction ParseInstruction(List<Dictionary<string, RegDecl>> scopes)
    {
        var first = Cur;
        string? guard = null;
        bool guardNot = false;
        if (Cur.Is('@'))
        {
            _p++;
            if (Cur.Is('!')) { guardNot = true; _p++; }
            guard = Resolve(ExpectIdent("guard predicate").Text, scopes);
        }
        var op = Cur;
        if (op.Kind != TokenKind.Ident || op.Text.StartsWith('.') || op.Text.StartsWith('%'))
            throw Error($"expected an instruction, found {op}", op.Line);
        _p++;
        var operands = new List<Operand>();
        if (!Cur.Is(';'))
        {
            while (true)
            {
                var o = ParseOperand(scopes);
                if (Cur.Is('|'))
                {
                    _p++;
                    var pair = new Operand { Kind = OperandKind.Pair };
                    pair.Items.Add(o);
                    pair.Items.Add(ParseOperand(scopes));
                    o = pair;
                }
                operands.Add(o);
                if (Cur.Is(',')) { _p++; continue; }
                break;
            }
        }
        if (!Cur.Is(';')) throw Error($"expected ';' or ',' after operand, found {Cur}", Cur.Line);
        _p++;
        return new RawInstruction
        {
            Opcode = op.Text, Operands = operands, Guard = guard, GuardNot = guardNot, Line = first.Line,
            Text = LineText(first.Line),
        };
    }

    private Operand ParseOperand(List<Dictionary<string, RegDecl>> scopes)
    {
        var tok = Cur;
        if (tok.Is('['))
        {
            _p++;
            var a = new Operand { Kind = OperandKind.Address };
            if (Cur.Kind == TokenKind.Ident)
            {
                a.Name = Resolve(Next().Text, scopes);
                if (Cur.Is('+') || Cur.Is('-'))
                {
                    bool neg = Next().Text == "-";
                    if (Cur.Is('-')) { neg = !neg; _p++; }
                    a.Offset = neg ? -ParseNumberToken() : ParseNumberToken();
                }
            }
            else
            {
                bool neg = false;
                if (Cur.Is('-')) { neg = true; _p++; }
                long v = ParseNumberToken();
                a.Offset = neg ? -v : v;
            }
            Expect(']');
            return a;
        }
        if (tok.Is('{'))
        {
            _p++;
            var v = new Operand { Kind = OperandKind.Vector };
            while (true)
            {
                v.Items.Add(ParseOperand(scopes));
                if (Cur.Is(',')) { _p++; continue; }
                break;
            }
            Expect('}');
            return v;
        }
        if (tok.Is('!'))
        {
            _p++;
            var n = ExpectIdent("predicate");
            return new Operand { Kind = OperandKind.Name, Name = Resolve(n.Text, scopes), Not = true };
        }
        if (tok.Is('-') || tok.Kind == TokenKind.Number)
        {
            bool neg = false;
            if (tok.Is('-')) { neg = true; _p++; }
            var num = Cur;
            if (num.Kind != TokenKind.Number) throw Error($"expected a number after '-', found {num}", num.Line);
            _p++;
            return new Operand { Kind = OperandKind.Immediate, ImmText = num.Text, ImmNegative = neg };
        }
        if (tok.Kind == TokenKind.Ident)
        {
            _p++;
            return new Operand { Kind = OperandKind.Name, Name = Resolve(tok.Text, scopes) };
        }
        throw Error($"unexpected {tok} in operand list", tok.Line);
    }

    private static string Resolve(string name, List<Dictionary<string, RegDecl>> scopes)
    {
        for (int s = scopes.Count - 1; s >= 0; s--)
            if (scopes[s].TryGetValue(name, out var d)) return d.Key;
        return name;
    }

    private Dim3 ParseDim3()
    {
        uint x = (uint)ParseNumberToken(), y = 1, z = 1;
        if (Cur.Is(',')) { _p++; y = (uint)ParseNumberToken(); }
        if (Cur.Is(',')) { _p++; z = (uint)ParseNumberToken(); }
        return new Dim3(x, y, z);
    }

    private PtxType ParseTypeToken()
    {
        var t = Cur;
        if (t.Kind != TokenKind.Ident || !t.Text.StartsWith('.')) throw Error($"expected a type (.u32, .f32, ...), found {t}", t.Line);
        var type = PtxTypes.Parse(t.Text[1..]);
        if (type == PtxType.None) throw Error($"unknown type '{t.Text}'", t.Line);
        _p++;
        return type;
    }

    private long ParseNumberToken()
    {
        var t = Cur;
        if (t.Kind != TokenKind.Number || !Literals.TryParseInteger(t.Text, out long v))
            throw Error($"expected an integer, found {t}", t.Line);
        _p++;
        return v;
    }

    private Token ExpectIdent(string what)
    {
        var t = Cur;
        if (t.Kind != TokenKind.Ident) throw Error($"expected {what}, found {t}", t.Line);
        _p++;
        return t;
    }

    private void Expect(char c)
    {
        if (!Cur.Is(c)) throw Error($"expected '{c}', found {Cur}", Cur.Line);
        _p++;
    }

    private void SkipLine(int line)
    {
        while (Cur.Kind != TokenKind.End && Cur.Line == line) _p++;
    }

    private void SkipStatement()
    {
        int line = Cur.Line;
        while (Cur.Kind != TokenKind.End && !Cur.Is(';')) _p++;
        if (Cur.Kind == TokenKind.End) throw Error("missing ';'", line);
        _p++;
    }

    internal string LineText(int line)
    {
        if (line < 1 || line > _lines.Length) return string.Empty;
        var s = _lines[line - 1];
        int c = s.IndexOf("//", StringComparison.Ordinal);
        return (c >= 0 ? s[..c] : s).Trim();
    }

    private PtxParseException Error(string what, int line) =>
        new($"PTX parse error: {what}.", new PtxLocation(_source, _kernel, line, LineText(line)));

    private PtxUnsupportedInstructionException Unsupported(string what, int line) =>
        new($"Unsupported PTX: {what}.", new PtxLocation(_source, _kernel, line, LineText(line)));
}
