using System.Globalization;
using Sbp.Autograd;
using Sbp.Memory;
using Sbp.Tensors;

namespace Sbp.Optim;

/// <summary>
/// Base of the optimizers. Holds parameter groups of named parameters (names must be unique:
/// they key the state), a learning rate that schedules set before each step, the step count, and
/// per-parameter state tensors, allocated lazily at the first step in the parameter's device pool
/// under <see cref="MemoryCategory.OptimizerState"/> and freed by <see cref="Dispose"/>.
/// <see cref="Step"/> runs one backend update kernel per parameter under <see cref="Tape.NoGrad"/>;
/// parameters whose Grad is null are skipped (their state and per-parameter step do not change).
/// <para>Gradient accumulation over k micro-batches: gradients add up across Backward calls until
/// <see cref="ZeroGrad"/>, so run forward + Backward of loss / k for each micro-batch, then Step()
/// and ZeroGrad() once; this equals one step on the whole batch for mean-reduced losses.</para>
/// </summary>
public abstract class Optimizer : IDisposable
{
    readonly Dictionary<string, Tensor> _state = new(StringComparer.Ordinal);
    readonly Dictionary<string, long> _paramSteps = new(StringComparer.Ordinal);
    readonly Dictionary<string, Tensor> _params = new(StringComparer.Ordinal);
    bool _disposed;

    protected Optimizer(IEnumerable<ParamGroup> groups, float learningRate, float weightDecay)
    {
        ParamGroups = groups.ToList();
        if (!(learningRate >= 0f) || float.IsInfinity(learningRate))
            throw new ArgumentOutOfRangeException(nameof(learningRate), $"{GetType().Name}: learning rate must be finite and >= 0, got {learningRate}.");
        if (!(weightDecay >= 0f)) throw new ArgumentOutOfRangeException(nameof(weightDecay), $"{GetType().Name}: weight decay must be >= 0, got {weightDecay}.");
        LearningRate = learningRate;
        WeightDecay = weightDecay;
        var seen = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
        foreach (var g in ParamGroups)
            foreach (var (name, t) in g.Parameters)
            {
                if (string.IsNullOrEmpty(name)) throw new ArgumentException($"{GetType().Name}: a parameter in group '{g.Name}' has an empty name; names key the optimizer state.");
                if (!_params.TryAdd(name, t)) throw new ArgumentException($"{GetType().Name}: parameter name '{name}' appears twice; names must be unique across groups.");
                if (!seen.Add(t)) throw new ArgumentException($"{GetType().Name}: parameter '{name}' is the same tensor as another parameter; pass each tensor once.");
                if (t.DType != DType.Float32) throw new ArgumentException($"{GetType().Name}: parameter '{name}' is {t.DType}; only Float32 parameters can be optimized.");
            }
    }

    /// <summary>One group holding all the parameters.</summary>
    protected static IEnumerable<ParamGroup> OneGroup(IEnumerable<(string Name, Tensor Tensor)> parameters) => [new ParamGroup(parameters)];

    public IReadOnlyList<ParamGroup> ParamGroups { get; }

    /// <summary>The learning rate of groups without their own; schedules set it before each step.</summary>
    public float LearningRate { get; set; }

    /// <summary>The weight decay of groups without their own.</summary>
    public float WeightDecay { get; }

    /// <summary>Calls of <see cref="Step"/> so far (the schedule position of the next step).</summary>
    public long StepCount { get; private set; }

    /// <summary>Names of the per-parameter state tensors this optimizer keeps (e.g. "exp_avg").</summary>
    protected abstract IReadOnlyList<string> StateKinds { get; }

    /// <summary>Bytes of optimizer state allocated now.</summary>
    public long StateBytes => _state.Values.Sum(t => t.Bytes);

    /// <summary>Applies one update to every parameter that has a gradient.</summary>
    public void Step()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        using var noGrad = Tape.NoGrad();
        using var label = OpLabel.Push($"{GetType().Name.ToLowerInvariant()}.step");
        foreach (var g in ParamGroups)
        {
            float lr = g.LearningRate ?? LearningRate * g.LearningRateScale;
            float wd = g.WeightDecay ?? WeightDecay;
            foreach (var (name, p) in g.Parameters)
            {
                var grad = p.Grad;
                if (grad is null) continue;
                if (grad.Shape != p.Shape)
                    throw new ShapeMismatchException($"{GetType().Name}.Step: parameter '{name}' {p.Shape} has a gradient of shape {grad.Shape}.");
                if (grad.Device != p.Device)
                    throw new InvalidOperationException($"{GetType().Name}.Step: parameter '{name}' is on {p.Device} but its gradient is on {grad.Device}.");
                long step = _paramSteps.GetValueOrDefault(name) + 1;
                _paramSteps[name] = step;
                Update(name, p, grad, lr, wd, step);
            }
        }
        StepCount++;
    }

    /// <summary>Updates one parameter in place; <paramref name="step"/> is its 1-based update count.</summary>
    protected abstract void Update(string name, Tensor param, Tensor grad, float learningRate, float weightDecay, long step);

    /// <summary>The state tensor "kind.name", allocated (zero-filled) on first use; <paramref name="created"/> tells.</summary>
    protected Tensor State(string kind, string name, Tensor like, out bool created)
    {
        string key = kind + "." + name;
        created = !_state.TryGetValue(key, out var t);
        if (t is null)
        {
            t = Tensor.Empty(like.Shape, like.Device, DType.Float32, MemoryCategory.OptimizerState).DetachFromScope();
            t.Name = key;
            t.Backend.Fill(t, 0f);
            _state[key] = t;
        }
        return t;
    }

    /// <summary>Frees every gradient of the parameters (PyTorch's zero_grad(set_to_none=True)).</summary>
    public void ZeroGrad()
    {
        foreach (var p in _params.Values) p.ZeroGrad();
    }

    /// <summary>Hyperparameters saved as scalars (informational; not checked on load).</summary>
    protected virtual IEnumerable<(string Name, double Value)> Hyperparameters() => [];

    /// <summary>
    /// The state: live tensors "kind.param" and scalars "step" (<see cref="StepCount"/>), "lr",
    /// "step.&lt;param&gt;" (per-parameter update counts) and the hyperparameters ("hp.*").
    /// </summary>
    public OptimizerState StateDict()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var scalars = new Dictionary<string, double>(StringComparer.Ordinal)
        {
            ["step"] = StepCount,
            ["lr"] = LearningRate,
        };
        foreach (var (n, s) in _paramSteps) scalars["step." + n] = s;
        foreach (var (n, v) in Hyperparameters()) scalars["hp." + n] = v;
        return new OptimizerState(new Dictionary<string, Tensor>(_state, StringComparer.Ordinal), scalars);
    }

    /// <summary>
    /// Every way <paramref name="tensors"/> (names, shapes, dtypes) and <paramref name="scalars"/>
    /// do not fit this optimizer; empty when they do. State for a parameter may be absent (it
    /// never had a gradient); unknown names, wrong shapes or dtypes, and missing "step" are problems.
    /// </summary>
    public IReadOnlyList<string> CheckStateDict(IEnumerable<(string Name, Shape Shape, DType DType)> tensors, IReadOnlyDictionary<string, double> scalars)
    {
        var problems = new List<string>();
        foreach (var (key, shape, dtype) in tensors)
        {
            int dot = key.IndexOf('.');
            string kind = dot < 0 ? key : key[..dot], name = dot < 0 ? "" : key[(dot + 1)..];
            if (dot < 0 || !StateKinds.Contains(kind))
                problems.Add($"unexpected state tensor '{key}': {GetType().Name} keeps {string.Join(", ", StateKinds.Select(k => $"'{k}.<param>'"))}");
            else if (!_params.TryGetValue(name, out var p))
                problems.Add($"state tensor '{key}' is for parameter '{name}', which this optimizer does not have");
            else if (p.Shape != shape || dtype != DType.Float32)
                problems.Add($"state tensor '{key}': {dtype} {shape} in the state, parameter '{name}' is {p.DType} {p.Shape}");
        }
        if (!scalars.TryGetValue("step", out double step) || step < 0 || step != Math.Floor(step))
            problems.Add("scalar 'step' is missing or not a non-negative integer");
        foreach (var (key, v) in scalars)
        {
            if (!key.StartsWith("step.", StringComparison.Ordinal)) continue;
            string name = key[5..];
            if (!_params.ContainsKey(name)) problems.Add($"scalar '{key}' is for parameter '{name}', which this optimizer does not have");
            else if (v < 0 || v != Math.Floor(v)) problems.Add($"scalar '{key}' = {v.ToString(CultureInfo.InvariantCulture)} is not a non-negative integer");
        }
        return problems;
    }

    /// <summary>
    /// Replaces the state with copies of <paramref name="state"/> (its tensors may live anywhere the
    /// backend can copy from; they are not kept). Checks everything first and throws
    /// <see cref="OptimizerStateMismatchException"/> listing every problem, loading nothing.
    /// Restores StepCount, LearningRate and the per-parameter step counts.
    /// </summary>
    public void LoadStateDict(OptimizerState state)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var problems = CheckStateDict(state.Tensors.Select(kv => (kv.Key, kv.Value.Shape, kv.Value.DType)), state.Scalars);
        if (problems.Count > 0) throw new OptimizerStateMismatchException(GetType().Name, problems);
        FreeState();
        using (Tape.NoGrad())
            foreach (var (key, src) in state.Tensors)
            {
                var p = _params[key[(key.IndexOf('.') + 1)..]];
                var t = Tensor.Empty(p.Shape, p.Device, DType.Float32, MemoryCategory.OptimizerState).DetachFromScope();
                t.Name = key;
                if (src.Device == p.Device) t.Backend.Copy(src, t);
                else t.Backend.CopyFromHost(System.Runtime.InteropServices.MemoryMarshal.AsBytes(src.ToArray().AsSpan()), t);
                _state[key] = t;
            }
        StepCount = (long)state.Scalars["step"];
        if (state.Scalars.TryGetValue("lr", out double lr)) LearningRate = (float)lr;
        foreach (var (key, v) in state.Scalars)
            if (key.StartsWith("step.", StringComparison.Ordinal)) _paramSteps[key[5..]] = (long)v;
    }

    void FreeState()
    {
        foreach (var t in _state.Values) t.Dispose();
        _state.Clear();
        _paramSteps.Clear();
    }

    /// <summary>Frees the state tensors (not the parameters or their gradients).</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        FreeState();
        GC.SuppressFinalize(this);
    }

    public override string ToString() =>
        $"{GetType().Name}(lr {LearningRate}, {ParamGroups.Count} groups, {_params.Count} parameters, step {StepCount})";
}
