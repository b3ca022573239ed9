using System.Collections.Concurrent;
using Sbp.Tensors;

namespace Sbp.Stochastic;

/// <summary>
/// Which nodes of one region body needed their full saved tensors when an eager-compaction guess
/// failed: the body's fingerprint (each recorded op and its output shape, in order) and their record
/// indices. A hint applies only while a run records the same ops, so another body under the same
/// region name is never kept whole by mistake.
/// </summary>
internal sealed record EagerHint(string[] Ops, HashSet<int> Dense);

/// <summary>
/// What regions learned about their bodies on earlier steps, by region name, input shape and axis:
/// eager-compaction hints (one per body seen under that key, newest first) and the body's net rotation
/// along the region's dimension. Hints only save work: a wrong one costs a re-run of the body or a late
/// compaction, never a wrong gradient.
/// </summary>
internal static class RegionHints
{
    internal readonly record struct Key(string Name, Shape Shape, int Axis);

    internal sealed record Entry(IReadOnlyList<EagerHint> Eager, int Rotation)
    {
        public static Entry None { get; } = new([], 0);
    }

    const int MaxKeys = 4096, MaxBodiesPerKey = 4;

    static readonly ConcurrentDictionary<Key, Entry> Store = new();

    public static Entry Get(Key key) => Store.GetValueOrDefault(key) ?? Entry.None;

    /// <summary>Remembers the dense nodes of a body (replacing an older hint for the same fingerprint).</summary>
    public static void AddEager(Key key, EagerHint hint)
    {
        var old = Get(key);
        var list = old.Eager.Where(h => !h.Ops.AsSpan().SequenceEqual(hint.Ops)).Take(MaxBodiesPerKey - 1).Prepend(hint).ToList();
        Set(key, old with { Eager = list });
    }

    /// <summary>Remembers that the body returns its positions rolled by <paramref name="rotation"/> along the region's dimension.</summary>
    public static void SetRotation(Key key, int rotation) => Set(key, Get(key) with { Rotation = rotation });

    static void Set(Key key, Entry entry)
    {
        // A process that sees ever new clip shapes should not collect hints forever.
        if (Store.Count >= MaxKeys && !Store.ContainsKey(key)) Store.Clear();
        Store[key] = entry;
    }
}
