using Sbp.Backends;
using Sbp.Tensors;

namespace Sbp.Optim;

/// <summary>
/// Adam with decoupled weight decay, PyTorch's torch.optim.AdamW (amsgrad off): at the parameter's
/// t-th update, p *= 1 - lr * wd; m = beta1 m + (1 - beta1) g; v = beta2 v + (1 - beta2) g^2;
/// p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps).
/// State: "exp_avg.&lt;param&gt;" (m), "exp_avg_sq.&lt;param&gt;" (v), and the scalar "step.&lt;param&gt;" (t).
/// </summary>
public sealed class AdamW : Optimizer
{
    public AdamW(IEnumerable<ParamGroup> groups, float learningRate = 1e-3f, float beta1 = 0.9f, float beta2 = 0.999f,
        float eps = 1e-8f, float weightDecay = 1e-2f)
        : base(groups, learningRate, weightDecay)
    {
        if (!(beta1 >= 0f && beta1 < 1f)) throw new ArgumentOutOfRangeException(nameof(beta1), $"AdamW: beta1 must be in [0, 1), got {beta1}.");
        if (!(beta2 >= 0f && beta2 < 1f)) throw new ArgumentOutOfRangeException(nameof(beta2), $"AdamW: beta2 must be in [0, 1), got {beta2}.");
        if (!(eps >= 0f)) throw new ArgumentOutOfRangeException(nameof(eps), $"AdamW: eps must be >= 0, got {eps}.");
        Beta1 = beta1;
        Beta2 = beta2;
        Eps = eps;
    }

    public AdamW(IEnumerable<(string Name, Tensor Tensor)> parameters, float learningRate = 1e-3f, float beta1 = 0.9f,
        float beta2 = 0.999f, float eps = 1e-8f, float weightDecay = 1e-2f)
        : this(OneGroup(parameters), learningRate, beta1, beta2, eps, weightDecay) { }

    public float Beta1 { get; }
    public float Beta2 { get; }
    public float Eps { get; }

    protected override IReadOnlyList<string> StateKinds { get; } = ["exp_avg", "exp_avg_sq"];

    protected override IEnumerable<(string Name, double Value)> Hyperparameters() =>
        [("beta1", Beta1), ("beta2", Beta2), ("eps", Eps), ("weight_decay", WeightDecay)];

    protected override void Update(string name, Tensor param, Tensor grad, float learningRate, float weightDecay, long step)
    {
        var m = State("exp_avg", name, param, out _);
        var v = State("exp_avg_sq", name, param, out _);
        param.Backend.AdamWUpdate(new AdamWUpdateSpec(learningRate, Beta1, Beta2, Eps, weightDecay, step), param, grad, m, v);
    }
}
