using System.Buffers.Binary;
using System.Text;

namespace Sbp.Models.Pretrained;

/// <summary>
/// A restricted pickle reader for PyTorch state dicts, after torch/_weights_only_unpickler.py: protocol-2 opcodes
/// only, GLOBAL names matched against a fixed allow-list (never imported, never reflected), REDUCE only on the
/// allow-listed callables (OrderedDict, _rebuild_tensor_v2, _rebuild_parameter), SETITEM(S) only on dicts, APPEND(S)
/// only on lists, persistent ids only for storages. Anything else stops the read with a
/// <see cref="PthFormatException"/> naming the opcode or global and its byte offset. Nothing is executed.
/// </summary>
public sealed class Unpickler
{
    static readonly HashSet<string> StorageTypes =
        ["FloatStorage", "HalfStorage", "BFloat16Storage", "DoubleStorage", "LongStorage", "IntStorage", "ShortStorage", "CharStorage", "ByteStorage", "BoolStorage"];

    static readonly HashSet<string> Callables = ["collections.OrderedDict", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_parameter"];

    /// <summary>The globals a state dict needs; also what the refusal message lists.</summary>
    public static IEnumerable<string> AllowedGlobals => Callables.Concat(StorageTypes.Select(s => "torch." + s));

    readonly Stream _stream;
    readonly string _file;
    readonly PthLimits _limits;
    readonly Func<object?[], PickleStorage> _persistentLoad;
    readonly List<object?> _stack = [];
    readonly Stack<int> _marks = new();
    readonly Dictionary<long, object?> _memo = [];
    long _start;
    byte _op;

    /// <param name="stream">Positioned at the pickle; left after its STOP.</param>
    /// <param name="file">The file's name for messages.</param>
    /// <param name="limits">Caps on the pickle's size, stack and memo.</param>
    /// <param name="persistentLoad">Turns a persistent id tuple into a storage (or throws).</param>
    public Unpickler(Stream stream, string file, PthLimits limits, Func<object?[], PickleStorage> persistentLoad)
    {
        _stream = stream;
        _file = file;
        _limits = limits;
        _persistentLoad = persistentLoad;
    }

    /// <summary>Reads one pickle up to its STOP and returns its object.</summary>
    public object? Load()
    {
        _start = _stream.Position;
        _stack.Clear();
        _marks.Clear();
        _memo.Clear();
        while (true)
        {
            long at = _stream.Position;
            if (at - _start > _limits.MaxPickleBytes) throw Fail(at, $"the pickle is longer than {_limits.MaxPickleBytes} bytes (PthLimits.MaxPickleBytes)");
            int op = _stream.ReadByte();
            _op = op < 0 ? (byte)0 : (byte)op;
            if (op < 0) throw Fail(at, "the pickle ends without STOP (a truncated file)");
            if (op == '.')
            {
                if (_stack.Count != 1 || _marks.Count > 0) throw Fail(at, $"STOP with {_stack.Count} objects on the stack and {_marks.Count} open marks");
                return _stack[0];
            }
            Step((byte)op, at);
            if (_stack.Count > _limits.MaxStack) throw Fail(at, $"more than {_limits.MaxStack} objects on the stack (PthLimits.MaxStack)");
        }
    }

    void Step(byte op, long at)
    {
        _op = op;
        switch (op)
        {
            case 0x80: if (ReadByte(at) is not (2 or 3)) throw Fail(at, "PROTO other than 2 or 3 (torch.save writes protocol 2)"); break;
            case (byte)'}': Push(new PickleDict()); break;
            case (byte)']': Push(new List<object?>()); break;
            case (byte)')': Push(Array.Empty<object?>()); break;
            case (byte)'(': _marks.Push(_stack.Count); break;
            case (byte)'N': Push(PickleNone.Value); break;
            case 0x88: Push(true); break;
            case 0x89: Push(false); break;
            case (byte)'K': Push((long)ReadByte(at)); break;
            case (byte)'M': Push((long)BinaryPrimitives.ReadUInt16LittleEndian(Read(2, at))); break;
            case (byte)'J': Push((long)BinaryPrimitives.ReadInt32LittleEndian(Read(4, at))); break;
            case 0x8a: Push(ReadLong1(at)); break;
            case (byte)'G': Push(BinaryPrimitives.ReadDoubleBigEndian(Read(8, at))); break;
            case (byte)'X': Push(Utf8(BinaryPrimitives.ReadUInt32LittleEndian(Read(4, at)), at)); break;
            case (byte)'U': Push(Latin1(ReadByte(at), at)); break;
            case (byte)'t': Push(PopMark(at).ToArray()); break;
            case 0x85: Push(new[] { Pop(at) }); break;
            case 0x86: { var b = Pop(at); var a = Pop(at); Push(new[] { a, b }); break; }
            case 0x87: { var c = Pop(at); var b = Pop(at); var a = Pop(at); Push(new[] { a, b, c }); break; }
            case (byte)'q': Memo(ReadByte(at), at); break;
            case (byte)'r': Memo(BinaryPrimitives.ReadUInt32LittleEndian(Read(4, at)), at); break;
            case (byte)'h': Push(Recall(ReadByte(at), at)); break;
            case (byte)'j': Push(Recall(BinaryPrimitives.ReadUInt32LittleEndian(Read(4, at)), at)); break;
            case (byte)'c': Push(Global(at)); break;
            case (byte)'R': { var args = Pop(at); var f = Pop(at); Push(Reduce(f, args, at)); break; }
            case (byte)'b': { var state = Pop(at); Build(Peek(at), state, at); break; }
            case (byte)'Q': Push(_persistentLoad(Pop(at) as object?[] ?? throw Fail(at, "BINPERSID of something other than a tuple"))); break;
            case (byte)'s': { var v = Pop(at); var k = Pop(at); SetItem(Peek(at), k, v, at); break; }
            case (byte)'u':
            {
                var items = PopMark(at);
                if (items.Count % 2 != 0) throw Fail(at, "SETITEMS with an odd number of items");
                var target = Peek(at);
                for (int i = 0; i < items.Count; i += 2) SetItem(target, items[i], items[i + 1], at);
                break;
            }
            case (byte)'a': { var v = Pop(at); ListOf(Peek(at), "APPEND", at).Add(v); break; }
            case (byte)'e': { var items = PopMark(at); ListOf(Peek(at), "APPENDS", at).AddRange(items); break; }
            default: throw Fail(at, $"opcode {Name(op)} is not allowed in a state dict (allowed: protocol-2 data opcodes, GLOBAL from an allow-list, REDUCE, BUILD, BINPERSID)");
        }
    }

    static readonly Dictionary<byte, string> OpNames = new()
    {
        [0x80] = "PROTO", [(byte)'}'] = "EMPTY_DICT", [(byte)']'] = "EMPTY_LIST", [(byte)')'] = "EMPTY_TUPLE", [(byte)'('] = "MARK",
        [(byte)'N'] = "NONE", [0x88] = "NEWTRUE", [0x89] = "NEWFALSE", [(byte)'K'] = "BININT1", [(byte)'M'] = "BININT2", [(byte)'J'] = "BININT",
        [0x8a] = "LONG1", [0x8b] = "LONG4", [(byte)'G'] = "BINFLOAT", [(byte)'X'] = "BINUNICODE", [(byte)'U'] = "SHORT_BINSTRING",
        [(byte)'T'] = "BINSTRING", [(byte)'B'] = "BINBYTES", [(byte)'C'] = "SHORT_BINBYTES", [(byte)'t'] = "TUPLE", [0x85] = "TUPLE1",
        [0x86] = "TUPLE2", [0x87] = "TUPLE3", [(byte)'q'] = "BINPUT", [(byte)'r'] = "LONG_BINPUT", [(byte)'h'] = "BINGET", [(byte)'j'] = "LONG_BINGET",
        [(byte)'c'] = "GLOBAL", [(byte)'R'] = "REDUCE", [(byte)'b'] = "BUILD", [(byte)'Q'] = "BINPERSID", [(byte)'s'] = "SETITEM",
        [(byte)'u'] = "SETITEMS", [(byte)'a'] = "APPEND", [(byte)'e'] = "APPENDS", [(byte)'.'] = "STOP", [(byte)'i'] = "INST", [(byte)'o'] = "OBJ",
        [0x93] = "STACK_GLOBAL", [0x81] = "NEWOBJ", [0x92] = "NEWOBJ_EX", [(byte)'P'] = "PERSID", [0x82] = "EXT1", [0x83] = "EXT2", [0x84] = "EXT4",
        [0x95] = "FRAME", [0x94] = "MEMOIZE", [(byte)'S'] = "STRING", [(byte)'V'] = "UNICODE", [(byte)'I'] = "INT", [(byte)'L'] = "LONG",
        [(byte)'F'] = "FLOAT", [(byte)'0'] = "POP", [(byte)'1'] = "POP_MARK", [(byte)'2'] = "DUP", [(byte)'l'] = "LIST", [(byte)'d'] = "DICT",
        [(byte)'g'] = "GET", [(byte)'p'] = "PUT", [0x8c] = "SHORT_BINUNICODE", [0x8d] = "BINUNICODE8", [0x8e] = "BINBYTES8", [0x8f] = "EMPTY_SET",
        [0x90] = "ADDITEMS", [0x91] = "FROZENSET", [0x96] = "BYTEARRAY8", [0x97] = "NEXT_BUFFER", [0x98] = "READONLY_BUFFER",
    };

    /// <summary>An opcode as "NAME ('c')" or "NAME (0x93)".</summary>
    static string Name(byte op) =>
        $"{OpNames.GetValueOrDefault(op, "unknown opcode")} ({(op is >= 0x20 and < 0x7f ? $"'{(char)op}'" : $"0x{op:x2}")})";

    PickleGlobal Global(long at)
    {
        string module = ReadLine(at), name = ReadLine(at), full = $"{module}.{name}";
        if (Callables.Contains(full) || (module == "torch" && StorageTypes.Contains(name))) return new PickleGlobal(module, name);
        throw Fail(at, $"global '{full}' is not allowed: a state dict needs only {string.Join(", ", AllowedGlobals)}. " +
            "If the file is a trusted full checkpoint, save its state dict alone in Python (torch.save(ckpt['state_dict'], 'weights.pth'))");
    }

    object Reduce(object? f, object? args, long at)
    {
        if (f is not PickleGlobal g || args is not object?[] a) throw Fail(at, $"REDUCE of {Describe(f)} with {Describe(args)}: only allow-listed callables with a tuple of arguments");
        switch (g.FullName)
        {
            case "collections.OrderedDict" when a.Length == 0:
                return new PickleDict { Ordered = true };
            case "torch._utils._rebuild_tensor_v2" when a.Length is 6 or 7:
                return RebuildTensor(a, at);
            case "torch._utils._rebuild_parameter" when a.Length == 3 && a[0] is PickleTensor t:
                return t;
            default:
                throw Fail(at, $"REDUCE of {g.FullName} with {a.Length} arguments ({string.Join(", ", a.Select(Describe))}) is not a state-dict construction");
        }
    }

    /// <summary>_rebuild_tensor_v2(storage, offset, size, stride, requires_grad, backward_hooks[, metadata]) with every view inside its storage.</summary>
    PickleTensor RebuildTensor(object?[] a, long at)
    {
        if (a[0] is not PickleStorage storage || a[1] is not long offset || a[2] is not object?[] size || a[3] is not object?[] stride || a[4] is not bool)
            throw Fail(at, $"_rebuild_tensor_v2 with arguments ({string.Join(", ", a.Select(Describe))}): expected (storage, offset, size tuple, stride tuple, requires_grad, hooks)");
        if (size.Length != stride.Length || size.Any(s => s is not long n || n < 0) || stride.Any(s => s is not long n || n < 0) || offset < 0)
            throw Fail(at, $"a tensor with size ({string.Join(", ", size)}), stride ({string.Join(", ", stride)}) and offset {offset}: sizes, strides and the offset must be non-negative integers of the same rank");
        long[] sz = [.. size.Cast<long>()], st = [.. stride.Cast<long>()];
        long last = offset;
        bool empty = sz.Any(s => s == 0);
        try
        {
            for (int i = 0; i < sz.Length; i++) last = checked(last + (sz[i] - 1) * st[i]);
        }
        catch (OverflowException) { throw Fail(at, "a tensor's extent overflows 64 bits"); }
        if (!empty && last >= storage.Numel)
            throw Fail(at, $"a tensor of size ({string.Join(", ", sz)}), stride ({string.Join(", ", st)}) at offset {offset} reaches element {last} of storage '{storage.Key}' with {storage.Numel} elements");
        return new PickleTensor(storage, offset, sz, st);
    }

    void Build(object? target, object? state, long at)
    {
        // torch.save BUILDs an OrderedDict state dict with its __dict__ ({'_metadata': ...}); the metadata is dropped.
        if (target is PickleDict && state is PickleDict) return;
        throw Fail(at, $"BUILD of {Describe(target)} with {Describe(state)}: only a dict's attributes are accepted");
    }

    void SetItem(object? target, object? key, object? value, long at)
    {
        if (target is not PickleDict d) throw Fail(at, $"SETITEM on {Describe(target)}: only dicts take items");
        if (key is not (string or long or object?[])) throw Fail(at, $"a dict key of type {Describe(key)}");
        d.Set(key, value);
    }

    List<object?> ListOf(object? target, string op, long at) => target as List<object?> ?? throw Fail(at, $"{op} on {Describe(target)}: only lists take items");

    void Memo(long index, long at)
    {
        if (_memo.Count >= _limits.MaxMemo && !_memo.ContainsKey(index)) throw Fail(at, $"more than {_limits.MaxMemo} memo entries (PthLimits.MaxMemo)");
        _memo[index] = Peek(at);
    }

    object? Recall(long index, long at) => _memo.TryGetValue(index, out var v) ? v : throw Fail(at, $"memo entry {index} is read before it is written");

    void Push(object? value) => _stack.Add(value);

    object? Pop(long at)
    {
        if (_stack.Count == 0 || (_marks.Count > 0 && _stack.Count <= _marks.Peek())) throw Fail(at, "an opcode pops an empty stack");
        var v = _stack[^1];
        _stack.RemoveAt(_stack.Count - 1);
        return v;
    }

    object? Peek(long at) => _stack.Count > 0 && (_marks.Count == 0 || _stack.Count > _marks.Peek()) ? _stack[^1] : throw Fail(at, "an opcode reads an empty stack");

    List<object?> PopMark(long at)
    {
        if (_marks.Count == 0) throw Fail(at, "an opcode needs a MARK and there is none");
        int mark = _marks.Pop();
        var items = _stack.GetRange(mark, _stack.Count - mark);
        _stack.RemoveRange(mark, _stack.Count - mark);
        return items;
    }

    byte ReadByte(long at) => _stream.ReadByte() is int b and >= 0 ? (byte)b : throw Fail(at, "the pickle ends inside an opcode's argument");

    byte[] Read(long n, long at)
    {
        if (n > _stream.Length - _stream.Position || n > _limits.MaxPickleBytes)
            throw Fail(at, $"an argument of {n} bytes, more than the {Math.Max(0, _stream.Length - _stream.Position)} bytes left in the pickle");
        var bytes = new byte[n];
        _stream.ReadExactly(bytes);
        return bytes;
    }

    object ReadLong1(long at)
    {
        int n = ReadByte(at);
        var b = Read(n, at);
        // Beyond 64 bits only the legacy format's magic number (10 bytes) is expected.
        if (n > 8) return new System.Numerics.BigInteger(b, isUnsigned: false, isBigEndian: false);
        long v = 0;
        for (int i = n - 1; i >= 0; i--) v = (v << 8) | b[i];
        if (n is > 0 and < 8 && (b[n - 1] & 0x80) != 0) v -= 1L << (8 * n);
        return v;
    }

    string Utf8(long n, long at) => Encoding.UTF8.GetString(Read(n, at));
    string Latin1(long n, long at) => Encoding.Latin1.GetString(Read(n, at));

    string ReadLine(long at)
    {
        var sb = new StringBuilder();
        while (true)
        {
            byte b = ReadByte(at);
            if (b == '\n') return sb.ToString();
            if (sb.Length >= 256) throw Fail(at, "a GLOBAL name longer than 256 characters");
            sb.Append((char)b);
        }
    }

    static string Describe(object? v) => v switch
    {
        null => "nothing",
        string s => $"'{(s.Length > 40 ? s[..40] + "..." : s)}'",
        long or double or bool => v.ToString()!,
        object?[] t => $"a tuple of {t.Length}",
        List<object?> l => $"a list of {l.Count}",
        PickleDict => "a dict",
        PickleGlobal g => g.FullName,
        PickleStorage s => $"storage '{s.Key}' ({s.Type})",
        PickleTensor => "a tensor",
        _ => v.GetType().Name,
    };

    PthFormatException Fail(long at, string what) => new($"{_file}: {what} ({Name(_op)} at pickle byte {at - _start}). Nothing in the file was executed.");
}
