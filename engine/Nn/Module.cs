using Sbp.Autograd;
using Sbp.Memory;
using Sbp.Rng;
using Sbp.Tensors;

namespace Sbp.Nn;

/// <summary>
/// A layer or a model: named parameters, buffers and submodules, PyTorch-style.
/// <list type="bullet">
/// <item>Registration is explicit: a subclass's constructor calls <see cref="RegisterParameter"/>,
/// <see cref="RegisterBuffer"/> and <see cref="RegisterModule{T}"/>; the order of registration is the
/// order of every listing and of the state dict.</item>
/// <item>Names are dotted paths like PyTorch's state dict keys ("blocks.0.attn.qkv.weight").
/// A tensor or module registered twice (weight tying) is listed once, under its first name.</item>
/// <item>Parameters are leaves in <see cref="MemoryCategory.Parameter"/> that require grad, owned by
/// the module (detached from any <see cref="TensorScope"/>) until <see cref="Dispose"/>. Buffers
/// (running statistics) are in <see cref="MemoryCategory.Parameter"/> too and never require grad,
/// so the pool's Parameter bytes are the model's whole state.</item>
/// <item><see cref="Forward"/> always returns a new tensor object the caller owns (an identity
/// returns a free view, never its input), so a caller may dispose every output it gets.
/// Intermediates a module makes are freed before it returns (the tape keeps what backward needs).</item>
/// <item>Modules that draw random numbers while running (dropout) keep a <see cref="RandomSource"/>
/// of their own, listed by <see cref="NamedRandomSources"/> so a checkpoint can save and restore it
/// (<see cref="LoadRandomSources"/>).</item>
/// <item>Layers read their parameters through the registry (<see cref="Parameter"/>), so
/// <see cref="WithParameters"/> can run the module on other tensors (torch.func.functional_call),
/// e.g. to check parameter gradients with a function-style gradient check.</item>
/// </list>
/// </summary>
public abstract partial class Module : IDisposable
{
    readonly List<(string Name, Tensor Tensor)> _parameters = [];
    readonly List<(string Name, Tensor Tensor)> _buffers = [];
    readonly List<(string Name, Module Module)> _modules = [];
    readonly List<(string Name, RandomSource Source)> _random = [];
    readonly List<Tensor> _owned = [];   // what Dispose frees (substitutes from WithParameters are never owned)
    bool _disposed;

    protected Module(Device? device = null) => Device = device ?? Device.Default;

    /// <summary>Where the module's tensors live.</summary>
    public Device Device { get; }

    /// <summary>True (the default) in training mode; false after <see cref="Eval"/>.</summary>
    public bool Training { get; private set; } = true;

    public bool IsDisposed => _disposed;

    /// <summary>The layer's computation. Returns a new tensor the caller owns.</summary>
    public abstract Tensor Forward(Tensor x);

    // ---- registration ------------------------------------------------------------------------

    /// <summary>
    /// Makes <paramref name="tensor"/> a parameter of this module under <paramref name="name"/> (no dots)
    /// and takes ownership of it: it is re-filed under <see cref="MemoryCategory.Parameter"/>,
    /// removed from its scope and set to require grad. It must be a Float32 leaf on the module's
    /// device with memory of its own (not a view). Returns the tensor.
    /// </summary>
    protected Tensor RegisterParameter(string name, Tensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        if (!tensor.IsDisposed && tensor.DType != DType.Float32)
            throw new ArgumentException($"{GetType().Name}.RegisterParameter('{name}'): parameters must be Float32, got {tensor.DType} {tensor.Shape}.");
        Adopt("RegisterParameter", name, tensor);
        tensor.RequiresGrad = true;
        _parameters.Add((name, tensor));
        return tensor;
    }

    /// <summary>
    /// Makes <paramref name="tensor"/> a buffer (state that is saved but not trained, such as running
    /// statistics) under <paramref name="name"/>, taking ownership as <see cref="RegisterParameter"/>
    /// does (category Parameter); buffers never require grad. Float32 or Int32.
    /// </summary>
    protected Tensor RegisterBuffer(string name, Tensor tensor)
    {
        Adopt("RegisterBuffer", name, tensor);
        if (tensor.RequiresGrad) tensor.RequiresGrad = false;
        _buffers.Add((name, tensor));
        return tensor;
    }

    /// <summary>Makes <paramref name="module"/> a submodule under <paramref name="name"/>; this module disposes it.</summary>
    protected T RegisterModule<T>(string name, T module) where T : Module
    {
        ArgumentNullException.ThrowIfNull(module);
        CheckName("RegisterModule", name);
        if (ReferenceEquals(module, this)) throw new ArgumentException($"{GetType().Name}.RegisterModule('{name}'): a module cannot contain itself.");
        _modules.Add((name, module));
        return module;
    }

    /// <summary>
    /// Registers a random source this module draws from while running (e.g. dropout masks) under
    /// <paramref name="name"/>; <see cref="GetRandomSource"/> reads it, <see cref="LoadRandomSources"/> replaces it.
    /// </summary>
    protected RandomSource RegisterRandomSource(string name, RandomSource source)
    {
        ArgumentNullException.ThrowIfNull(source);
        CheckName("RegisterRandomSource", name);
        _random.Add((name, source));
        return source;
    }

    /// <summary>The current random source registered under <paramref name="name"/> (it may have been replaced by <see cref="LoadRandomSources"/>).</summary>
    protected RandomSource GetRandomSource(string name)
    {
        foreach (var (n, s) in _random) if (n == name) return s;
        throw new KeyNotFoundException($"{GetType().Name}: no random source named '{name}' is registered.");
    }

    /// <summary>
    /// An independent source for a module that draws while running, derived from
    /// <paramref name="rng"/>'s seed, <paramref name="purpose"/> and one counter block taken from
    /// <paramref name="rng"/> (so two modules built from the same source get different streams, and
    /// the same construction order gives the same streams).
    /// </summary>
    protected static RandomSource Fork(RandomSource rng, string purpose)
    {
        ArgumentNullException.ThrowIfNull(rng);
        return rng.Split(purpose).Split(rng.Take(1).Offset);
    }

    void Adopt(string what, string name, Tensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        CheckName(what, name);
        string where = $"{GetType().Name}.{what}('{name}')";
        if (tensor.IsDisposed) throw new ObjectDisposedException($"{where}: the tensor {tensor.Shape} was disposed.");
        if (!tensor.IsLeaf) throw new ArgumentException($"{where}: the tensor {tensor.Shape} was produced by the recorded op '{tensor.Producer}'; register a leaf (compute it under Tape.NoGrad, or copy it).");
        if (tensor.Device != Device) throw new ArgumentException($"{where}: the tensor is on device {tensor.Device} but the module is on {Device}; create it on the module's device.");
        if (_owned.Any(t => ReferenceEquals(t, tensor)))
            throw new ArgumentException($"{where}: this tensor is already registered in this module.");
        var block = tensor.Block;
        if (block.BaseCategory != MemoryCategory.Parameter)
        {
            if (block.RefCount != 1)
                throw new ArgumentException($"{where}: the tensor {tensor.Shape} shares its memory with {block.RefCount - 1} other tensor(s) (a view or a saved tensor); register a tensor with memory of its own.");
            block.Pool.SetCategory(block, MemoryCategory.Parameter);
        }
        tensor.DetachFromScope();
        tensor.Name ??= name;
        _owned.Add(tensor);
    }

    void CheckName(string what, string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (name.Contains('.'))
            throw new ArgumentException($"{GetType().Name}.{what}('{name}'): names cannot contain '.', which separates the levels of dotted names.");
        if (_parameters.Any(p => p.Name == name) || _buffers.Any(b => b.Name == name) || _modules.Any(m => m.Name == name) || _random.Any(r => r.Name == name))
            throw new ArgumentException($"{GetType().Name}.{what}('{name}'): the name is already taken in this module.");
    }

    // ---- listings ----------------------------------------------------------------------------

    static string Join(string prefix, string name) => prefix.Length == 0 ? name : prefix + "." + name;

    /// <summary>This module's direct submodules.</summary>
    public IEnumerable<(string Name, Module Module)> NamedChildren() => _modules.ToList();

    /// <summary>Every module in the tree, pre-order, starting with this one under the name "" (as PyTorch).</summary>
    public IEnumerable<(string Name, Module Module)> NamedModules()
    {
        var seen = new HashSet<Module>(ReferenceEqualityComparer.Instance);
        var result = new List<(string, Module)>();
        Walk(this, "", seen, result);
        return result;
    }

    static void Walk(Module m, string prefix, HashSet<Module> seen, List<(string, Module)> result)
    {
        if (!seen.Add(m)) return;
        result.Add((prefix, m));
        foreach (var (n, child) in m._modules) Walk(child, Join(prefix, n), seen, result);
    }

    /// <summary>Every parameter of the tree with its dotted name ("blocks.0.attn.qkv.weight"), pre-order.</summary>
    public IEnumerable<(string Name, Tensor Tensor)> NamedParameters() => Collect(m => m._parameters);

    /// <summary>Every buffer of the tree with its dotted name ("bn.running_mean").</summary>
    public IEnumerable<(string Name, Tensor Tensor)> NamedBuffers() => Collect(m => m._buffers);

    /// <summary>The parameters of the tree, in the order of <see cref="NamedParameters"/>.</summary>
    public IEnumerable<Tensor> Parameters() => NamedParameters().Select(p => p.Tensor);

    /// <summary>Every random source of the tree with its dotted name ("blocks.0.drop_path.rng").</summary>
    public IEnumerable<(string Name, RandomSource Source)> NamedRandomSources()
    {
        var result = new List<(string, RandomSource)>();
        foreach (var (prefix, m) in NamedModules())
            foreach (var (n, s) in m._random) result.Add((Join(prefix, n), s));
        return result;
    }

    List<(string, Tensor)> Collect(Func<Module, List<(string Name, Tensor Tensor)>> select)
    {
        var seen = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
        var result = new List<(string, Tensor)>();
        foreach (var (prefix, m) in NamedModules())
            foreach (var (n, t) in select(m))
                if (seen.Add(t)) result.Add((Join(prefix, n), t));
        return result;
    }

    /// <summary>
    /// Parameters and buffers by dotted name, in PyTorch's state-dict order (a module's parameters,
    /// then its buffers, then each submodule's entries). The values are the module's own tensors, not
    /// copies: do not dispose them; copy what must outlive a later update.
    /// </summary>
    public IReadOnlyDictionary<string, Tensor> StateDict()
    {
        var dict = new OrderedDictionary<string, Tensor>();
        var seenTensors = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
        var seenModules = new HashSet<Module>(ReferenceEqualityComparer.Instance);
        AddState(this, "", dict, seenTensors, seenModules);
        return dict;
    }

    static void AddState(Module m, string prefix, OrderedDictionary<string, Tensor> dict, HashSet<Tensor> seenTensors, HashSet<Module> seenModules)
    {
        if (!seenModules.Add(m)) return;
        foreach (var (n, t) in m._parameters) if (seenTensors.Add(t)) dict.Add(Join(prefix, n), t);
        foreach (var (n, t) in m._buffers) if (seenTensors.Add(t)) dict.Add(Join(prefix, n), t);
        foreach (var (n, child) in m._modules) AddState(child, Join(prefix, n), dict, seenTensors, seenModules);
    }

    /// <summary>
    /// Copies the values of <paramref name="state"/> into this module's parameters and buffers, bit
    /// for bit. Everything is checked before anything is copied, and every problem is reported at
    /// once in one <see cref="StateDictMismatchException"/>: keys the module has and the state lacks
    /// (missing), keys the state has and the module lacks (unexpected), and entries whose shape or
    /// dtype differ. With <paramref name="strict"/> false, missing and unexpected keys are skipped
    /// (shape and dtype differences are still errors). Values on another device are copied through
    /// the host. Not recorded on any tape; gradients are left as they are.
    /// </summary>
    public void LoadStateDict(IReadOnlyDictionary<string, Tensor> state, bool strict = true)
    {
        ArgumentNullException.ThrowIfNull(state);
        var own = StateDict();
        var missing = own.Keys.Where(k => !state.ContainsKey(k)).ToList();
        var unexpected = state.Keys.Where(k => !own.ContainsKey(k)).ToList();
        var mismatched = new List<string>();
        foreach (var (name, target) in own)
        {
            if (!state.TryGetValue(name, out var source)) continue;
            if (source is null || source.IsDisposed) mismatched.Add($"{name}: the state's tensor is {(source is null ? "null" : "disposed")}");
            else if (source.DType != target.DType) mismatched.Add($"{name}: dtype {source.DType} in the state vs {target.DType} in the module");
            else if (source.Shape != target.Shape) mismatched.Add($"{name}: shape {source.Shape} in the state vs {target.Shape} in the module");
        }
        if (mismatched.Count > 0 || (strict && (missing.Count > 0 || unexpected.Count > 0)))
            throw new StateDictMismatchException(GetType().Name, strict ? missing : [], strict ? unexpected : [], mismatched);

        using var noGrad = Tape.NoGrad();
        foreach (var (name, target) in own)
        {
            if (!state.TryGetValue(name, out var source) || ReferenceEquals(source, target)) continue;
            CopyInto(source, target);
        }
    }

    /// <summary>target = source (same shape and dtype), bit for bit; through the host across devices.</summary>
    static void CopyInto(Tensor source, Tensor target)
    {
        if (source.Device == target.Device)
        {
            if (source.Pointer != target.Pointer) target.Backend.Copy(source, target);
            return;
        }
        var bytes = new byte[source.Bytes];
        source.Backend.CopyToHost(source, bytes);
        target.Backend.CopyFromHost(bytes, target);
    }

    /// <summary>
    /// Replaces random sources by dotted name (as listed by <see cref="NamedRandomSources"/>; rebuild
    /// each as <c>new RandomSource(seed, position)</c>), so a resumed run draws the same numbers. With
    /// <paramref name="strict"/>, names missing on either side are an error (reported together).
    /// </summary>
    public void LoadRandomSources(IReadOnlyDictionary<string, RandomSource> sources, bool strict = true)
    {
        ArgumentNullException.ThrowIfNull(sources);
        var owners = new Dictionary<string, (Module Module, int Index)>();
        foreach (var (prefix, m) in NamedModules())
            for (int i = 0; i < m._random.Count; i++) owners[Join(prefix, m._random[i].Name)] = (m, i);
        if (strict)
        {
            var missing = owners.Keys.Where(k => !sources.ContainsKey(k)).ToList();
            var unexpected = sources.Keys.Where(k => !owners.ContainsKey(k)).ToList();
            if (missing.Count > 0 || unexpected.Count > 0)
                throw new StateDictMismatchException(GetType().Name, missing, unexpected, [], "LoadRandomSources");
        }
        foreach (var (name, (m, i)) in owners)
            if (sources.TryGetValue(name, out var s))
                m._random[i] = (m._random[i].Name, s ?? throw new ArgumentNullException(nameof(sources), $"LoadRandomSources: the source for '{name}' is null."));
    }

    // ---- substitution --------------------------------------------------------------------------

    /// <summary>The tensor registered under <paramref name="name"/> in this module (not dotted), or null.</summary>
    protected Tensor? FindParameter(string name)
    {
        foreach (var (n, t) in _parameters) if (n == name) return t;
        return null;
    }

    /// <summary>The parameter registered under <paramref name="name"/> in this module; subclasses read their weights through it.</summary>
    protected Tensor Parameter(string name) =>
        FindParameter(name) ?? throw new KeyNotFoundException($"{GetType().Name}: no parameter named '{name}' is registered.");

    /// <summary>The buffer registered under <paramref name="name"/> in this module.</summary>
    protected Tensor Buffer(string name)
    {
        foreach (var (n, t) in _buffers) if (n == name) return t;
        throw new KeyNotFoundException($"{GetType().Name}: no buffer named '{name}' is registered.");
    }

    /// <summary>
    /// Runs the module with other tensors in place of some parameters (torch.func.functional_call):
    /// until the returned handle is disposed, the parameters named (dotted) in
    /// <paramref name="parameters"/> are those tensors, so a forward pass uses them and gradients
    /// flow to them. Shapes and devices must match. The module's own tensors are untouched and come
    /// back on dispose; the substitutes are not owned (the module never disposes them).
    /// <code>using (model.WithParameters(new Dictionary&lt;string, Tensor&gt; { ["fc1.weight"] = w })) y = model.Forward(x);</code>
    /// </summary>
    public IDisposable WithParameters(IReadOnlyDictionary<string, Tensor> parameters)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        var slots = new Dictionary<string, (Module Module, int Index)>();
        foreach (var (prefix, m) in NamedModules())
            for (int i = 0; i < m._parameters.Count; i++) slots.TryAdd(Join(prefix, m._parameters[i].Name), (m, i));
        var problems = new List<string>();
        foreach (var (name, t) in parameters)
        {
            if (!slots.TryGetValue(name, out var slot)) { problems.Add($"'{name}' is not a parameter"); continue; }
            var own = slot.Module._parameters[slot.Index].Tensor;
            if (t is null || t.IsDisposed) problems.Add($"'{name}': the substitute is {(t is null ? "null" : "disposed")}");
            else if (t.Shape != own.Shape || t.DType != own.DType) problems.Add($"'{name}': {t.DType} {t.Shape} given for {own.DType} {own.Shape}");
            else if (t.Device != own.Device) problems.Add($"'{name}': on device {t.Device}, the parameter is on {own.Device}");
        }
        if (problems.Count > 0)
            throw new ArgumentException($"{GetType().Name}.WithParameters: {string.Join("; ", problems)}.");
        var restore = new List<(Module, int, (string, Tensor))>();
        foreach (var (name, t) in parameters)
        {
            var (m, i) = slots[name];
            restore.Add((m, i, m._parameters[i]));
            m._parameters[i] = (m._parameters[i].Name, t);
        }
        return new Substitution(restore);
    }

    sealed class Substitution(List<(Module Module, int Index, (string, Tensor) Entry)> restore) : IDisposable
    {
        bool _done;

        public void Dispose()
        {
            if (_done) return;
            _done = true;
            foreach (var (m, i, entry) in restore) m._parameters[i] = entry;
        }
    }

    // ---- modes -------------------------------------------------------------------------------

    /// <summary>Sets training mode on this module and every submodule; returns this module.</summary>
    public Module Train(bool on = true)
    {
        foreach (var (_, m) in NamedModules()) m.Training = on;
        return this;
    }

    /// <summary>Evaluation mode (Train(false)): dropout off, batch norm on running statistics.</summary>
    public Module Eval() => Train(false);

    /// <summary>
    /// Stops gradients to every parameter (RequiresGrad = false): backward neither computes nor
    /// stores their gradients. Batch-norm statistics are a separate switch (BatchNorm's Frozen).
    /// </summary>
    public void Freeze() => SetRequiresGrad(_ => true, false);

    /// <summary>Stops gradients to the parameters whose dotted name satisfies <paramref name="where"/>.</summary>
    public void Freeze(Func<string, bool> where) => SetRequiresGrad(where, false);

    /// <summary>Lets every parameter receive gradients again.</summary>
    public void Unfreeze() => SetRequiresGrad(_ => true, true);

    /// <summary>Lets the parameters whose dotted name satisfies <paramref name="where"/> receive gradients again.</summary>
    public void Unfreeze(Func<string, bool> where) => SetRequiresGrad(where, true);

    void SetRequiresGrad(Func<string, bool> where, bool on)
    {
        ArgumentNullException.ThrowIfNull(where);
        foreach (var (name, p) in NamedParameters())
            if (where(name)) p.RequiresGrad = on;
    }

    /// <summary>Number of parameter elements (shared tensors once); only those that require grad with <paramref name="trainableOnly"/>.</summary>
    public long ParameterCount(bool trainableOnly = false) =>
        NamedParameters().Where(p => !trainableOnly || p.Tensor.RequiresGrad).Sum(p => p.Tensor.Numel);

    /// <summary>Bytes of parameters and buffers (what the pool counts as Parameter for this module).</summary>
    public long StateBytes() => StateDict().Values.Sum(t => t.Bytes);

    /// <summary>Frees every parameter's accumulated gradient (Grad becomes null, as PyTorch's set_to_none).</summary>
    public void ZeroGrad()
    {
        foreach (var (_, p) in NamedParameters()) p.ZeroGrad();
    }

    /// <summary>Frees parameters, buffers, their gradients and every submodule. Idempotent.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (var (_, m) in _modules) m.Dispose();
        foreach (var t in _owned) t.Dispose();
        DisposeConstants();
        GC.SuppressFinalize(this);
    }

    public override string ToString() => $"{GetType().Name}({ParameterCount()} parameters{(Training ? "" : ", eval")})";

    // ---- helpers for subclasses ------------------------------------------------------------------

    /// <summary>A new, uninitialized Parameter-category tensor on the module's device, not yet registered.</summary>
    protected Tensor NewState(params int[] shape) => Tensor.Empty(new Shape(shape), Device, DType.Float32, MemoryCategory.Parameter);

    /// <summary>A free view of x recorded on the tape: the identity that still hands the caller a tensor of its own.</summary>
    protected static Tensor IdentityView(Tensor x) => Ops.Reshape(x, x.Shape.ToArray());
}
