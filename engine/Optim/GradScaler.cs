using Sbp.Autograd;
using Sbp.Backends;
using Sbp.Tensors;

namespace Sbp.Optim;

/// <summary>
/// Dynamic loss scaling for float16 training, with PyTorch's defaults and semantics (torch.amp.GradScaler): the loss
/// is multiplied by the scale before backward so small gradients survive float16; <see cref="Unscale"/> divides the
/// gradients back (once per step, before clipping) and notes whether any is infinite or NaN; <see cref="Step"/> skips
/// the optimizer's update on such a step; <see cref="Update"/> halves the scale after a skipped step and doubles it
/// after <see cref="GrowthInterval"/> clean steps in a row (never to infinity). Gradients must be Float32 (the
/// parameters are the float32 master weights).
/// <code>
/// var loss = scaler.ScaleLoss(Ops.CrossEntropy(logits, labels)); tape.Backward(loss);
/// scaler.Unscale(optimizer); GradClip.ClipByGlobalNorm(parameters, 1f);   // clipping sees true gradients
/// scaler.Step(optimizer); scaler.Update();
/// </code>
/// </summary>
public sealed class GradScaler
{
    readonly Dictionary<Optimizer, bool> _foundInf = new(ReferenceEqualityComparer.Instance);

    public GradScaler(float initScale = 65536f, float growthFactor = 2f, float backoffFactor = 0.5f, int growthInterval = 2000, bool enabled = true)
    {
        if (!(initScale > 0f) || !float.IsFinite(initScale)) throw new ArgumentOutOfRangeException(nameof(initScale), $"GradScaler: initScale must be a finite number > 0, got {initScale}.");
        if (!(growthFactor > 1f) || !float.IsFinite(growthFactor)) throw new ArgumentOutOfRangeException(nameof(growthFactor), $"GradScaler: growthFactor must be finite and > 1, got {growthFactor}.");
        if (!(backoffFactor > 0f && backoffFactor < 1f)) throw new ArgumentOutOfRangeException(nameof(backoffFactor), $"GradScaler: backoffFactor must be in (0, 1), got {backoffFactor}.");
        if (growthInterval < 1) throw new ArgumentOutOfRangeException(nameof(growthInterval), $"GradScaler: growthInterval must be >= 1, got {growthInterval}.");
        (Scale, GrowthFactor, BackoffFactor, GrowthInterval, Enabled) = (enabled ? initScale : 1f, growthFactor, backoffFactor, growthInterval, enabled);
    }

    /// <summary>The current scale (1 when disabled).</summary>
    public float Scale { get; private set; }
    public float GrowthFactor { get; }
    public float BackoffFactor { get; }
    public int GrowthInterval { get; }
    /// <summary>Clean steps since the scale last changed.</summary>
    public int GrowthTracker { get; private set; }
    /// <summary>False: every call passes through (bfloat16 and float32 training need no scaling).</summary>
    public bool Enabled { get; }

    /// <summary>loss x scale (the loss itself when disabled).</summary>
    public Tensor ScaleLoss(Tensor loss) => Enabled ? Ops.Mul(loss, Scale) : loss;

    /// <summary>
    /// Divides the gradients of <paramref name="optimizer"/>'s parameters by the scale, in place, and notes whether any
    /// holds an infinity or NaN (one read of the device for all of them). Once per optimizer between updates.
    /// </summary>
    public void Unscale(Optimizer optimizer)
    {
        ArgumentNullException.ThrowIfNull(optimizer);
        if (!Enabled) return;
        if (_foundInf.ContainsKey(optimizer))
            throw new InvalidOperationException("GradScaler.Unscale: already called on this optimizer since the last Update(); call it once per step.");
        float inverse = (float)(1.0 / Scale);
        using var noGrad = Tape.NoGrad();
        Tensor? nonFinite = null;   // sum of g * 0 over every gradient: 0, or NaN when some value is not finite
        foreach (var group in optimizer.ParamGroups)
            foreach (var (name, p) in group.Parameters)
            {
                if (p.Grad is not { } g) continue;
                if (g.DType != DType.Float32)
                    throw new InvalidOperationException($"GradScaler.Unscale: parameter '{name}' has a {g.DType} gradient; keep float32 master weights (gradients reaching them are Float32).");
                using var zeros = Ops.Mul(g, 0f);
                var sum = Ops.Sum(zeros);
                if (nonFinite is null) nonFinite = sum;
                else
                {
                    var total = Ops.Add(nonFinite, sum);
                    nonFinite.Dispose();
                    sum.Dispose();
                    nonFinite = total;
                }
                g.Backend.Unary(UnaryOp.MulScalar, g, g, inverse);
            }
        bool found = false;
        if (nonFinite is not null)
        {
            found = !float.IsFinite(nonFinite.Item());
            nonFinite.Dispose();
        }
        _foundInf[optimizer] = found;
    }

    /// <summary>Unscales if not done yet, then runs the optimizer's step unless a gradient was not finite. Returns whether it stepped.</summary>
    public bool Step(Optimizer optimizer)
    {
        ArgumentNullException.ThrowIfNull(optimizer);
        if (!Enabled)
        {
            optimizer.Step();
            return true;
        }
        if (!_foundInf.ContainsKey(optimizer)) Unscale(optimizer);
        if (_foundInf[optimizer]) return false;
        optimizer.Step();
        return true;
    }

    /// <summary>After the step: backs off after a non-finite gradient, else counts a clean step and grows the scale every <see cref="GrowthInterval"/>.</summary>
    public void Update()
    {
        if (!Enabled) return;
        if (_foundInf.Count == 0)
            throw new InvalidOperationException("GradScaler.Update: no gradients were checked since the last update; call Unscale or Step first.");
        if (_foundInf.Values.Any(f => f))
        {
            Scale *= BackoffFactor;
            GrowthTracker = 0;
        }
        else if (GrowthTracker + 1 == GrowthInterval)
        {
            float grown = Scale * GrowthFactor;
            if (float.IsFinite(grown)) Scale = grown;
            GrowthTracker = 0;
        }
        else GrowthTracker++;
        _foundInf.Clear();
    }

    /// <summary>Restores a scale and growth count saved with a checkpoint (PyTorch's scaler state_dict).</summary>
    public void Restore(float scale, int growthTracker)
    {
        if (!(scale > 0f) || !float.IsFinite(scale)) throw new ArgumentOutOfRangeException(nameof(scale), $"GradScaler.Restore: the scale must be a finite number > 0, got {scale}.");
        if (growthTracker < 0 || growthTracker >= GrowthInterval)
            throw new ArgumentOutOfRangeException(nameof(growthTracker), $"GradScaler.Restore: the growth tracker must be in [0, {GrowthInterval}), got {growthTracker}.");
        (Scale, GrowthTracker) = (scale, growthTracker);
        _foundInf.Clear();
    }
}
