using System.Collections.Concurrent;

namespace Sbp.Models.Data;

/// <summary>
/// Unreadable videos met by a loader: each is warned about once (through <see cref="Warn"/>, default
/// standard error) and counted; later epochs skip known-bad ones without decoding them again. Thread-safe.
/// </summary>
public sealed class DataIssues(Action<string>? warn = null)
{
    readonly ConcurrentDictionary<string, string> _corrupt = new(StringComparer.Ordinal);

    public Action<string> Warn { get; } = warn ?? (m => Console.Error.WriteLine(m));

    /// <summary>Distinct unreadable videos so far.</summary>
    public int CorruptCount => _corrupt.Count;

    /// <summary>Unreadable videos with the reason, sorted by path.</summary>
    public IReadOnlyList<(string Path, string Reason)> Corrupt =>
        _corrupt.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => (kv.Key, kv.Value)).ToArray();

    public bool IsKnownCorrupt(string path) => _corrupt.ContainsKey(path);

    /// <summary>Records an unreadable video; warns the first time it is seen.</summary>
    public void ReportCorrupt(string path, string reason)
    {
        if (_corrupt.TryAdd(path, reason)) Warn($"warning: skipping unreadable video {path}: {reason}");
    }
}
