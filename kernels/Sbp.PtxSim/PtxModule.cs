using Sbp.PtxSim.Model;
using Sbp.PtxSim.Parsing;

namespace Sbp.PtxSim;

/// <summary>
/// A parsed and decoded PTX module (the subset the engine's kernels use). Parsing checks everything it can:
/// syntax, declarations, operand kinds and every opcode / modifier (anything not implemented is refused here with
/// <see cref="PtxUnsupportedInstructionException"/>, never skipped).
/// </summary>
public sealed class PtxModule
{
    private readonly Dictionary<string, PtxEntry> _entries;

    private PtxModule(string sourceName, List<PtxEntry> entries)
    {
        SourceName = sourceName;
        _entries = new Dictionary<string, PtxEntry>(StringComparer.Ordinal);
        foreach (var e in entries) _entries[e.Name] = e;
        EntryNames = [.. entries.Select(e => e.Name)];
    }

    /// <summary>The name given to <see cref="Parse"/> (used in error messages).</summary>
    public string SourceName { get; }

    /// <summary>The `.entry` names in source order.</summary>
    public IReadOnlyList<string> EntryNames { get; }

    /// <summary>Parses PTX text. Errors: <see cref="PtxParseException"/> (source:line, line text, what is wrong) or
    /// <see cref="PtxUnsupportedInstructionException"/>.</summary>
    public static PtxModule Parse(string ptxText, string sourceName = "module.ptx")
    {
        ArgumentNullException.ThrowIfNull(ptxText);
        var parser = new Parser(ptxText, sourceName);
        parser.ParseModule();
        var entries = new List<PtxEntry>();
        var seen = new HashSet<string>();
        foreach (var raw in parser.Entries)
        {
            if (!seen.Add(raw.Name))
                throw new PtxParseException($"PTX parse error: entry {raw.Name} is defined twice.",
                    new PtxLocation(sourceName, raw.Name, raw.Line, parser.LineText(raw.Line)));
            entries.Add(Decoder.Decode(raw, parser.ModuleShared, sourceName));
        }
        return new PtxModule(sourceName, entries);
    }

    /// <summary>Static shared memory (bytes) the entry uses.</summary>
    public int StaticSharedBytes(string entry) => GetEntry(entry).StaticSharedBytes;

    /// <summary>The distinct opcodes (with modifiers and types) used by an entry, in first-use order.</summary>
    public IReadOnlyList<string> InstructionKinds(string entry) => GetEntry(entry).KindNames;

    internal PtxEntry GetEntry(string name) =>
        _entries.TryGetValue(name, out var e)
            ? e
            : throw new ArgumentException($"PTX module {SourceName} has no entry '{name}' (entries: {string.Join(", ", EntryNames)}).", nameof(name));
}
