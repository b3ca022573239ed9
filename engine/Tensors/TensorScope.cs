namespace Sbp.Tensors;

/// <summary>
/// Disposes, when it ends, every tensor created on this thread while it was the innermost scope,
/// except tensors passed to <see cref="Keep"/> (moved to the enclosing scope) or
/// <see cref="Tensor.DetachFromScope"/>. The GC cannot see native memory, so this is how memory is
/// returned deterministically:
/// <code>using (var scope = TensorScope.Begin()) { var y = f(x); return scope.Keep(y); }</code>
/// </summary>
public sealed class TensorScope : IDisposable
{
    [ThreadStatic] static TensorScope? _current;
    readonly TensorScope? _parent;
    readonly HashSet<Tensor> _owned = new(ReferenceEqualityComparer.Instance);
    bool _disposed;

    TensorScope(TensorScope? parent) => _parent = parent;

    public static TensorScope? Current => _current;

    public static TensorScope Begin() => _current = new TensorScope(_current);

    /// <summary>How many live tensors the scope will dispose.</summary>
    public int Count => _owned.Count;

    /// <summary>Moves <paramref name="tensor"/> to the enclosing scope (or to no scope) and returns it.</summary>
    public Tensor Keep(Tensor tensor)
    {
        if (_owned.Remove(tensor)) { tensor.Scope = _parent; _parent?._owned.Add(tensor); }
        return tensor;
    }

    public T Keep<T>(T tensors) where T : IEnumerable<Tensor>
    {
        foreach (var t in tensors) Keep(t);
        return tensors;
    }

    internal static void Register(Tensor tensor)
    {
        var s = _current;
        if (s is null) return;
        s._owned.Add(tensor);
        tensor.Scope = s;
    }

    internal void Forget(Tensor tensor) => _owned.Remove(tensor);

    public void Dispose()
    {
        if (_disposed) return;
        if (_current != this)
            throw new InvalidOperationException("TensorScope.Dispose: scopes must end in the reverse order of Begin (an inner scope is still open).");
        _disposed = true;
        _current = _parent;
        foreach (var t in _owned.ToArray()) { t.Scope = null; t.Dispose(); }
        _owned.Clear();
    }
}
