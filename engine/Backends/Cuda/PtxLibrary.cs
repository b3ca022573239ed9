using System.Collections.Frozen;
using System.Reflection;
using System.Text.RegularExpressions;

namespace Sbp.Backends.Cuda;

/// <summary>
/// The hand-written PTX kernels (kernels/*.ptx, embedded in this assembly as resources named
/// <c>kernels/&lt;module&gt;.ptx</c>): one module per family, entry points named
/// <c>&lt;op&gt;_&lt;dtype&gt;</c> (candle's convention, e.g. <c>gather_f32</c>, <c>gather_f32x4</c>).
/// A backend loads a module's text once (cuModuleLoadData, or the PTX simulator) and then gets
/// functions by entry name; <see cref="ModuleOf"/> says which module holds an entry.
/// Each module's header comment documents its kernels' parameters and launch shape.
/// </summary>
public static partial class PtxLibrary
{
    const string Prefix = "kernels/";
    const string Suffix = ".ptx";

    static readonly Lazy<Catalog> Loaded = new(Load);

    /// <summary>Module names (the file names without .ptx), sorted.</summary>
    public static IReadOnlyList<string> Modules => Loaded.Value.Modules;

    /// <summary>Every entry point of every module, sorted.</summary>
    public static IReadOnlyList<string> Entries => Loaded.Value.AllEntries;

    /// <summary>The entry points of one module, in file order.</summary>
    public static IReadOnlyList<string> EntriesOf(string module) =>
        Loaded.Value.ModuleEntries.TryGetValue(module, out var entries) ? entries : throw UnknownModule(module);

    /// <summary>The PTX text of a module.</summary>
    public static string ModuleText(string module) =>
        Loaded.Value.Texts.TryGetValue(module, out var text) ? text : throw UnknownModule(module);

    /// <summary>The module that defines an entry point.</summary>
    public static string ModuleOf(string entry) =>
        Loaded.Value.EntryModule.TryGetValue(entry, out var module) ? module : throw UnknownEntry(entry);

    /// <summary>The PTX text of the module that defines an entry point.</summary>
    public static string TextOf(string entry) => ModuleText(ModuleOf(entry));

    /// <summary>True when some module defines the entry point.</summary>
    public static bool Contains(string entry) => Loaded.Value.EntryModule.ContainsKey(entry);

    sealed record Catalog(
        IReadOnlyList<string> Modules,
        IReadOnlyList<string> AllEntries,
        FrozenDictionary<string, string> Texts,
        FrozenDictionary<string, IReadOnlyList<string>> ModuleEntries,
        FrozenDictionary<string, string> EntryModule);

    [GeneratedRegex(@"^\s*\.visible\s+\.entry\s+([A-Za-z_$][A-Za-z0-9_$]*)", RegexOptions.Multiline)]
    private static partial Regex EntryPattern();

    static Catalog Load()
    {
        var assembly = typeof(PtxLibrary).Assembly;
        var texts = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var resource in assembly.GetManifestResourceNames())
        {
            if (!resource.StartsWith(Prefix, StringComparison.Ordinal) || !resource.EndsWith(Suffix, StringComparison.Ordinal)) continue;
            string module = resource[Prefix.Length..^Suffix.Length];
            texts[module] = ReadResource(assembly, resource);
        }
        if (texts.Count == 0)
            throw new InvalidOperationException(
                $"PtxLibrary: {assembly.GetName().Name} embeds no kernels/*.ptx resources; the engine project must include " +
                "<EmbeddedResource Include=\"..\\kernels\\*.ptx\" LogicalName=\"kernels/%(Filename)%(Extension)\" />.");

        var moduleEntries = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
        var entryModule = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (module, text) in texts.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            var entries = EntryPattern().Matches(text).Select(m => m.Groups[1].Value).ToArray();
            foreach (var entry in entries)
            {
                if (!entryModule.TryAdd(entry, module))
                    throw new InvalidOperationException(
                        $"PtxLibrary: entry '{entry}' is defined in both kernels/{entryModule[entry]}.ptx and kernels/{module}.ptx; entry names must be unique across modules.");
            }
            moduleEntries[module] = entries;
        }
        return new Catalog(
            texts.Keys.Order(StringComparer.Ordinal).ToArray(),
            entryModule.Keys.Order(StringComparer.Ordinal).ToArray(),
            texts.ToFrozenDictionary(StringComparer.Ordinal),
            moduleEntries.ToFrozenDictionary(StringComparer.Ordinal),
            entryModule.ToFrozenDictionary(StringComparer.Ordinal));
    }

    static string ReadResource(Assembly assembly, string name)
    {
        using var stream = assembly.GetManifestResourceStream(name)
            ?? throw new InvalidOperationException($"PtxLibrary: resource '{name}' is listed but cannot be opened.");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }

    static KeyNotFoundException UnknownModule(string module) =>
        new($"PtxLibrary: no kernel module named '{module}'. Modules: {string.Join(", ", Modules)} (kernels/<module>.ptx).");

    static KeyNotFoundException UnknownEntry(string entry)
    {
        var all = Loaded.Value.AllEntries;
        var close = all.Where(e => Distance(e, entry) <= Math.Max(2, entry.Length / 4)).ToArray();
        string hint = close.Length > 0 ? $" Did you mean {string.Join(" or ", close.Select(c => $"'{c}'"))}?" : "";
        return new KeyNotFoundException(
            $"PtxLibrary: no kernel entry named '{entry}'.{hint} Entries are named <op>_<dtype>; known: {string.Join(", ", all)}.");
    }

    /// <summary>Levenshtein distance, for the "did you mean" hint.</summary>
    static int Distance(string a, string b)
    {
        var row = new int[b.Length + 1];
        for (int j = 0; j <= b.Length; j++) row[j] = j;
        for (int i = 1; i <= a.Length; i++)
        {
            int diag = row[0];
            row[0] = i;
            for (int j = 1; j <= b.Length; j++)
            {
                int up = row[j];
                row[j] = Math.Min(Math.Min(row[j] + 1, row[j - 1] + 1), diag + (a[i - 1] == b[j - 1] ? 0 : 1));
                diag = up;
            }
        }
        return row[b.Length];
    }
}
