namespace Sbp.Models.Data;

/// <summary>
/// Least-recently-used cache of whole decoded videos, bounded in bytes. Small videos (like the ones
/// `sbp datasets make` writes) are then decoded once per run instead of once per clip: starting
/// ffmpeg costs far more than decoding a short low-resolution clip. Thread-safe.
/// </summary>
public sealed class DecodedVideoCache(long capacityBytes)
{
    readonly Dictionary<string, LinkedListNode<(string Key, VideoClip Clip)>> _map = new(StringComparer.Ordinal);
    readonly LinkedList<(string Key, VideoClip Clip)> _lru = new();
    readonly object _lock = new();
    long _bytes;

    public long CapacityBytes { get; } = capacityBytes;
    public long Bytes { get { lock (_lock) return _bytes; } }
    public int Hits { get; private set; }
    public int Misses { get; private set; }

    public bool TryGet(string key, out VideoClip clip)
    {
        lock (_lock)
        {
            if (_map.TryGetValue(key, out var node))
            {
                _lru.Remove(node);
                _lru.AddFirst(node);
                clip = node.Value.Clip;
                Hits++;
                return true;
            }
            Misses++;
            clip = null!;
            return false;
        }
    }

    /// <summary>Adds a clip (ignored when larger than the whole cache), evicting the least recently used ones.</summary>
    public void Add(string key, VideoClip clip)
    {
        long size = clip.Data.LongLength;
        if (size > CapacityBytes) return;
        lock (_lock)
        {
            if (_map.ContainsKey(key)) return;
            while (_bytes + size > CapacityBytes && _lru.Last is { } oldest)
            {
                _lru.RemoveLast();
                _map.Remove(oldest.Value.Key);
                _bytes -= oldest.Value.Clip.Data.LongLength;
            }
            _map[key] = _lru.AddFirst((key, clip));
            _bytes += size;
        }
    }
}
