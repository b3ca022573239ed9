using Sbp.Tensors;

namespace Sbp.Nn;

/// <summary>
/// Runs its modules in order, each on the previous one's output; they are named "0", "1", ... as in
/// PyTorch ("0.weight"). Intermediate outputs are disposed as soon as the next module has run (the
/// tape keeps what backward needs). All modules must be on one device.
/// </summary>
public sealed class Sequential : Module
{
    readonly List<Module> _layers = [];

    public Sequential(params Module[] modules) : this(null, modules) { }

    /// <summary>With an explicit device (else the first module's, else <see cref="Device.Default"/>).</summary>
    public Sequential(Device? device, params Module[] modules) : base(device ?? modules.FirstOrDefault()?.Device)
    {
        foreach (var m in modules) Append(m);
    }

    /// <summary>Adds a module at the end under the next index name; returns this.</summary>
    public Sequential Append(Module module)
    {
        ArgumentNullException.ThrowIfNull(module);
        _layers.Add(RegisterModule(_layers.Count.ToString(System.Globalization.CultureInfo.InvariantCulture), module));
        return this;
    }

    public int Count => _layers.Count;
    public Module this[int index] => _layers[index];
    public IReadOnlyList<Module> Layers => _layers;

    public override Tensor Forward(Tensor x)
    {
        var current = x;
        foreach (var layer in _layers)
        {
            var next = layer.Forward(current);
            if (!ReferenceEquals(current, x) && !ReferenceEquals(current, next)) current.Dispose();
            current = next;
        }
        return ReferenceEquals(current, x) ? IdentityView(x) : current;
    }
}
