using Sbp.PtxSim.Model;

namespace Sbp.PtxSim.Parsing;

/// <summary>The dot-separated parts of an opcode after the mnemonic; decoders take what they understand, and
/// anything left over is refused.</summary>
internal sealed class Mods
{
    private readonly List<string> _parts;

    public Mods(string opcode)
    {
        var all = opcode.Split('.');
        Base = all[0];
        _parts = [.. all.Skip(1)];
    }

    public string Base { get; }
    public int Count => _parts.Count;
    public IReadOnlyList<string> Remaining => _parts;

    public bool Take(string s) => _parts.Remove(s);

    public string? TakeAny(params string[] options)
    {
        foreach (var o in options)
            if (_parts.Remove(o)) return o;
        return null;
    }

    /// <summary>Removes and returns every part that names a type, in order.</summary>
    public List<PtxType> TakeTypes()
    {
        var types = new List<PtxType>();
        for (int k = 0; k < _parts.Count;)
        {
            var t = PtxTypes.Parse(_parts[k]);
            if (t != PtxType.None) { types.Add(t); _parts.RemoveAt(k); }
            else k++;
        }
        return types;
    }

    /// <summary>Removes parts starting with a prefix (e.g. cache-policy hints "L1::", "L2::").</summary>
    public void TakePrefixed(string prefix) => _parts.RemoveAll(p => p.StartsWith(prefix, StringComparison.Ordinal));
}
