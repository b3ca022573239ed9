using System.Text;

namespace Sbp.Nn;

/// <summary>
/// A state dict that does not fit a module: every missing key, unexpected key and shape or dtype
/// difference, listed together in the message (nothing was loaded).
/// </summary>
public sealed class StateDictMismatchException : Exception
{
    public StateDictMismatchException(string module, IReadOnlyList<string> missing, IReadOnlyList<string> unexpected,
        IReadOnlyList<string> mismatched, string operation = "LoadStateDict")
        : base(Format(module, missing, unexpected, mismatched, operation))
    {
        Missing = missing;
        Unexpected = unexpected;
        Mismatched = mismatched;
    }

    /// <summary>Keys the module has and the state lacks.</summary>
    public IReadOnlyList<string> Missing { get; }

    /// <summary>Keys the state has and the module lacks.</summary>
    public IReadOnlyList<string> Unexpected { get; }

    /// <summary>"name: what differs", one per entry whose shape or dtype differs.</summary>
    public IReadOnlyList<string> Mismatched { get; }

    static string Format(string module, IReadOnlyList<string> missing, IReadOnlyList<string> unexpected, IReadOnlyList<string> mismatched, string operation)
    {
        int count = missing.Count + unexpected.Count + mismatched.Count;
        var s = new StringBuilder($"{module}.{operation}: {count} problem{(count == 1 ? "" : "s")}; nothing was loaded.");
        if (missing.Count > 0) s.Append($"\n  missing (in the module, not in the state): {string.Join(", ", missing)}");
        if (unexpected.Count > 0) s.Append($"\n  unexpected (in the state, not in the module): {string.Join(", ", unexpected)}");
        foreach (var m in mismatched) s.Append($"\n  mismatch: {m}");
        s.Append("\nCheck that the checkpoint was saved from the same architecture and configuration");
        s.Append(missing.Count + unexpected.Count > 0 ? "; pass strict: false to skip missing and unexpected keys." : ".");
        return s.ToString();
    }
}
