namespace Sbp.Memory;

/// <summary>
/// The name of the op that is running on this thread, recorded on every block it allocates so
/// that memory snapshots and out-of-memory reports say who holds what.
/// </summary>
public static class OpLabel
{
    [ThreadStatic] static string? _current;

    public static string Current => _current ?? "user";

    public static Scope Push(string name)
    {
        var previous = _current;
        _current = name;
        return new Scope(previous);
    }

    public readonly struct Scope(string? previous) : IDisposable
    {
        public void Dispose() => _current = previous;
    }
}
