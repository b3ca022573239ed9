using Sbp.Backends;
using Sbp.Tensors;

namespace Sbp.Optim;

/// <summary>
/// Stochastic gradient descent with PyTorch's exact semantics (torch.optim.SGD): coupled weight
/// decay d = g + wd * p; with momentum, the buffer b is d at the parameter's first step and
/// momentum * b + (1 - dampening) * d afterwards; Nesterov uses d + momentum * b, otherwise b;
/// p -= lr * d. State: "momentum_buffer.&lt;param&gt;" (only when momentum != 0).
/// </summary>
public sealed class Sgd : Optimizer
{
    public Sgd(IEnumerable<ParamGroup> groups, float learningRate, float momentum = 0f, float dampening = 0f,
        bool nesterov = false, float weightDecay = 0f)
        : base(groups, learningRate, weightDecay)
    {
        if (!(momentum >= 0f)) throw new ArgumentOutOfRangeException(nameof(momentum), $"Sgd: momentum must be >= 0, got {momentum}.");
        if (nesterov && (momentum <= 0f || dampening != 0f))
            throw new ArgumentException("Sgd: Nesterov momentum requires momentum > 0 and dampening 0 (as in PyTorch).", nameof(nesterov));
        Momentum = momentum;
        Dampening = dampening;
        Nesterov = nesterov;
    }

    public Sgd(IEnumerable<(string Name, Tensor Tensor)> parameters, float learningRate, float momentum = 0f, float dampening = 0f,
        bool nesterov = false, float weightDecay = 0f)
        : this(OneGroup(parameters), learningRate, momentum, dampening, nesterov, weightDecay) { }

    public float Momentum { get; }
    public float Dampening { get; }
    public bool Nesterov { get; }

    protected override IReadOnlyList<string> StateKinds { get; } = ["momentum_buffer"];

    protected override IEnumerable<(string Name, double Value)> Hyperparameters() =>
        [("momentum", Momentum), ("dampening", Dampening), ("nesterov", Nesterov ? 1 : 0), ("weight_decay", WeightDecay)];

    protected override void Update(string name, Tensor param, Tensor grad, float learningRate, float weightDecay, long step)
    {
        Tensor? buffer = null;
        bool first = false;
        if (Momentum != 0f) buffer = State("momentum_buffer", name, param, out first);
        param.Backend.SgdUpdate(new SgdUpdateSpec(learningRate, Momentum, Dampening, Nesterov, weightDecay, first), param, grad, buffer);
    }
}
