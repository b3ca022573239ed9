using System.Globalization;

namespace Sbp.Models.Data;

/// <summary>One line of a list file: the video (file or frame folder, resolved against the root) and its label.</summary>
public sealed record ListEntry(string Path, int Label, int Line, int? FrameCount = null);

/// <summary>
/// A Kinetics/mmaction-style list file: one sample per line, <c>relative/path label</c>, or
/// <c>relative/path frames label</c> for frame folders (the frame count is informative). Paths are
/// relative to the root (default: the list file's folder) and may not contain spaces; blank lines
/// and lines starting with '#' are ignored. Bad lines (wrong field count, a label that is not an
/// integer in 0..classes-1, a missing file) are collected in <see cref="Problems"/> with their file
/// and line, and skipped, or thrown as <see cref="DataFormatException"/> with <see cref="BadLinePolicy.Fail"/>.
/// </summary>
public sealed class ListFile
{
    ListFile(string path, string root, List<ListEntry> entries, List<DataFormatException> problems, int classes)
    {
        FilePath = path;
        Root = root;
        Entries = entries;
        Problems = problems;
        Classes = classes;
    }

    public string FilePath { get; }
    public string Root { get; }
    public IReadOnlyList<ListEntry> Entries { get; }
    public IReadOnlyList<DataFormatException> Problems { get; }
    /// <summary>The class count given, or else the largest label + 1.</summary>
    public int Classes { get; }

    /// <param name="path">The list file.</param>
    /// <param name="classes">Labels must be below this; null accepts any label >= 0.</param>
    /// <param name="root">Folder the paths are relative to; null = the list file's folder.</param>
    /// <param name="checkFiles">Report lines whose file or folder does not exist.</param>
    /// <param name="policy">What a bad line does: skipped and reported in <see cref="Problems"/>, or thrown.</param>
    public static ListFile Load(string path, int? classes = null, string? root = null, bool checkFiles = true, BadLinePolicy policy = BadLinePolicy.Skip)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"list file not found: {path}", path);
        root ??= System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path)) ?? ".";
        var entries = new List<ListEntry>();
        var problems = new List<DataFormatException>();
        foreach (var (lineNo, raw, shown) in TextLines.Read(path))
        {
            if (TextLines.IsBlankOrComment(shown)) continue;
            var line = raw?.Trim();
            try
            {
                if (line is null) throw new DataFormatException(path, lineNo, $"the line is not UTF-8 text (bytes shown \\xNN): '{shown.Trim()}'");
                entries.Add(ParseLine(path, lineNo, line, classes, root, checkFiles));
            }
            catch (DataFormatException e) when (policy == BadLinePolicy.Skip)
            {
                problems.Add(e);
            }
        }
        int n = classes ?? (entries.Count == 0 ? 0 : entries.Max(e => e.Label) + 1);
        return new ListFile(path, root, entries, problems, n);
    }

    static ListEntry ParseLine(string file, int lineNo, string line, int? classes, string root, bool checkFiles)
    {
        var f = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
        if (f.Length is not (2 or 3))
            throw new DataFormatException(file, lineNo, $"expected 'path label' or 'path frames label', found {f.Length} fields: '{line}'");
        int? frames = null;
        if (f.Length == 3)
        {
            if (!int.TryParse(f[1], NumberStyles.Integer, CultureInfo.InvariantCulture, out int fc) || fc <= 0)
                throw new DataFormatException(file, lineNo, $"frame count '{f[1]}' is not a positive integer");
            frames = fc;
        }
        int label = ParseLabel(file, lineNo, f[^1], classes, null);
        var full = FullPath(file, lineNo, root, f[0]);
        if (checkFiles && !File.Exists(full) && !Directory.Exists(full))
            throw new DataFormatException(file, lineNo, $"file not found: {full}");
        return new ListEntry(full, label, lineNo, frames);
    }

    /// <summary>root/relative as a full path; a path the OS cannot represent (a NUL character) is a bad line, not a crash.</summary>
    internal static string FullPath(string file, int lineNo, string root, string relative)
    {
        try { return System.IO.Path.GetFullPath(System.IO.Path.Combine(root, relative)); }
        catch (Exception e) when (e is ArgumentException or PathTooLongException or NotSupportedException)
        {
            throw new DataFormatException(file, lineNo, $"path '{relative.Replace("\0", "\\0", StringComparison.Ordinal)}' is not a valid path ({e.Message})");
        }
    }

    /// <summary>An integer label in 0..classes-1, or a class name from <paramref name="names"/>.</summary>
    internal static int ParseLabel(string file, int lineNo, string text, int? classes, IReadOnlyList<string>? names)
    {
        if (int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out int label))
        {
            if (label < 0 || (classes is int c && label >= c))
                throw new DataFormatException(file, lineNo, classes is int k
                    ? $"label {label} is out of range 0..{k - 1} ({k} classes)"
                    : $"label {label} is negative");
            // Without a class count the count is the largest label + 1, which must fit an int.
            if (label == int.MaxValue)
                throw new DataFormatException(file, lineNo, $"label {label} is too large (the class count, label + 1, would overflow)");
            return label;
        }
        if (names is not null)
        {
            for (int i = 0; i < names.Count; i++)
                if (string.Equals(names[i], text, StringComparison.Ordinal)) return i;
            throw new DataFormatException(file, lineNo, $"label '{text}' is neither an integer nor one of the {names.Count} class names");
        }
        throw new DataFormatException(file, lineNo, $"label '{text}' is not an integer");
    }

    /// <summary>Class names, one per line (blank lines and '#' comments ignored); line order = label.</summary>
    public static string[] LoadClassNames(string path) =>
        File.ReadLines(path).Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#')).ToArray();
}
