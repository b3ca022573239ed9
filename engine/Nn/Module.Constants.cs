using Sbp.Tensors;

namespace Sbp.Nn;

// Constants a module derives from shapes alone (attention masks, index and position tables), kept on its device.
public abstract partial class Module
{
    readonly Dictionary<string, (object Key, Tensor Tensor)> _constants = new(StringComparer.Ordinal);

    /// <summary>
    /// The tensor in slot <paramref name="slot"/> for <paramref name="key"/> (the shapes it depends on): made by
    /// <paramref name="make"/> the first time, and again only when the key changes; kept on the module's device until
    /// then or until the module is disposed. A forward pass on a GPU then uploads it once, not every step. Read-only by
    /// contract: no op may write it, and the caller must not dispose it.
    /// </summary>
    protected Tensor Constant(string slot, object key, Func<Tensor> make)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_constants.TryGetValue(slot, out var held) && held.Key.Equals(key)) return held.Tensor;
        held.Tensor?.Dispose();
        var made = make().DetachFromScope();
        _constants[slot] = (key, made);
        return made;
    }

    void DisposeConstants()
    {
        foreach (var (_, t) in _constants.Values) t.Dispose();
        _constants.Clear();
    }
}
