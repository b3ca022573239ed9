using TorchSharp;
using static TorchSharp.torch;

namespace Sbp.Tools.ReferenceFixtures;

/// <summary>
/// A model's state dict as an ordered name -> tensor map. The models are written as plain functions over this map,
/// so the names are exactly the official ones and a float64 copy of the same model is one call away.
/// </summary>
internal sealed class ParamStore
{
    readonly List<StateEntry> _entries = [];
    readonly Dictionary<string, StateEntry> _byName = new(StringComparer.Ordinal);

    public IReadOnlyList<StateEntry> Entries => _entries;

    public Tensor this[string name] =>
        _byName.TryGetValue(name, out var e) ? e.Value : throw new KeyNotFoundException($"no state-dict entry '{name}'");

    public bool Contains(string name) => _byName.ContainsKey(name);

    /// <summary>Declares a float32 entry (zeros until <see cref="Randomize"/>).</summary>
    public void Add(string name, EntryKind kind, params long[] shape) => Add(name, kind, zeros(shape, ScalarType.Float32));

    /// <summary>Declares an entry with given contents (integer buffers).</summary>
    public void Add(string name, EntryKind kind, Tensor value)
    {
        var e = new StateEntry(name, kind, value);
        if (!_byName.TryAdd(name, e)) throw new InvalidOperationException($"duplicate state-dict entry '{name}'");
        _entries.Add(e);
    }

    /// <summary>
    /// Overwrites every float entry, in declaration order, from torch's global generator (seeded by the caller),
    /// with values large enough that a wrong wiring changes the output visibly.
    /// </summary>
    public void Randomize()
    {
        using var _ = no_grad();
        foreach (var e in _entries)
        {
            var t = e.Value;
            switch (e.Kind)
            {
                case EntryKind.Weight: t.normal_(0, 1 / Math.Sqrt(FanIn(t))); break;
                case EntryKind.Bias: t.normal_(0, 0.5); break;
                case EntryKind.NormWeight: t.normal_(0, 0.3).add_(1.0); break;
                case EntryKind.NormBias: t.normal_(0, 0.3); break;
                case EntryKind.BiasTable: t.normal_(0, 1); break;
                case EntryKind.QvBias: t.normal_(0, 0.5); break;
                case EntryKind.RunningMean: t.normal_(0, 0.3); break;
                case EntryKind.RunningVar: t.uniform_(0.5, 1.5); break;
                case EntryKind.Index: break;   // fixed contents, set by the model
                default: throw new InvalidOperationException(e.Kind.ToString());
            }
        }
    }

    /// <summary>fan_in as PyTorch counts it: input channels times the kernel size (in_features for Linear).</summary>
    static long FanIn(Tensor w)
    {
        if (w.dim() < 2) throw new InvalidOperationException("a weight needs at least 2 dimensions");
        long f = w.shape[1];
        for (int i = 2; i < w.dim(); i++) f *= w.shape[i];
        return f;
    }

    /// <summary>
    /// A deep copy with float entries in <paramref name="dtype"/>; parameters require grad when <paramref name="withGrad"/>
    /// (integer buffers keep their type).
    /// </summary>
    public ParamStore Copy(ScalarType dtype, bool withGrad)
    {
        var copy = new ParamStore();
        foreach (var e in _entries)
        {
            var v = e.Value.detach();
            v = v.is_floating_point() ? v.to_type(dtype, copy: true) : v.clone();
            if (withGrad && e.IsParameter) v.requires_grad_(true);
            copy.Add(e.Name, e.Kind, v);
        }
        return copy;
    }
}
