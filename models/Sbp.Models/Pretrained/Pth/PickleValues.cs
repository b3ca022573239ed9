namespace Sbp.Models.Pretrained;

// The few Python objects a state dict unpickles to. Tuples are object?[], lists List<object?>, dicts PickleDict,
// strings string, integers long, floats double, bools bool, None PickleNone.Value. Nothing here can run code.

/// <summary>Python's None.</summary>
public sealed class PickleNone
{
    public static PickleNone Value { get; } = new();
    PickleNone() { }
    public override string ToString() => "None";
}

/// <summary>An allow-listed global ("module.name"), a name looked up in a fixed table, never imported.</summary>
public sealed record PickleGlobal(string Module, string Name)
{
    public string FullName => $"{Module}.{Name}";
    public override string ToString() => FullName;
}

/// <summary>A dict or OrderedDict: insertion-ordered; keys are strings, integers or tuples.</summary>
public sealed class PickleDict
{
    readonly List<KeyValuePair<object, object?>> _items = [];
    readonly Dictionary<object, int> _index = [];

    public bool Ordered { get; init; }
    public IReadOnlyList<KeyValuePair<object, object?>> Items => _items;
    public int Count => _items.Count;

    public void Set(object key, object? value)
    {
        if (_index.TryGetValue(key, out int i)) _items[i] = new(key, value);
        else
        {
            _index[key] = _items.Count;
            _items.Add(new(key, value));
        }
    }

    public object? Get(string key) => _index.TryGetValue(key, out int i) ? _items[i].Value : null;
}

/// <summary>A storage named by a persistent id: its torch type ("FloatStorage"), key in the archive and element count.</summary>
public sealed record PickleStorage(string Type, string Key, long Numel);

/// <summary>A tensor view of a storage (torch._utils._rebuild_tensor_v2), in elements.</summary>
public sealed record PickleTensor(PickleStorage Storage, long Offset, long[] Size, long[] Stride);
