using Sbp.Rng;
using Sbp.Tensors;

namespace Sbp.Nn;

/// <summary>
/// The transformer MLP block as timm's Mlp: fc1 (in -> hidden), activation (exact GELU unless
/// given; the default GELU takes fc1's bias in the same pass), dropout, fc2 (hidden -> out), dropout. Parameters "fc1.weight", "fc1.bias",
/// "fc2.weight", "fc2.bias"; the dropouts are "drop1" and "drop2". Works on [..., in].
/// </summary>
public sealed class Mlp : Module
{
    readonly Func<Tensor, Tensor> _activation;

    /// <summary>The default GELU after a biased fc1 runs as one pass with the bias (<see cref="Ops.BiasGelu"/>).</summary>
    readonly bool _biasGelu;

    public Mlp(int inFeatures, int hiddenFeatures, int outFeatures, RandomSource rng, Func<Tensor, Tensor>? activation = null,
        float drop = 0f, bool bias = true, Device? device = null) : base(device)
    {
        ArgumentNullException.ThrowIfNull(rng);
        if (inFeatures < 1 || hiddenFeatures < 1 || outFeatures < 1)
            throw new ArgumentOutOfRangeException(nameof(inFeatures), $"Mlp({inFeatures}, {hiddenFeatures}, {outFeatures}): feature counts must be >= 1.");
        Dropout.CheckProbability("Mlp drop", drop);
        _activation = activation ?? (x => Ops.Gelu(x));
        _biasGelu = activation is null && bias;
        Fc1 = RegisterModule("fc1", new Linear(inFeatures, hiddenFeatures, rng, bias, device));
        Drop1 = RegisterModule("drop1", new Dropout(drop, rng, device));
        Fc2 = RegisterModule("fc2", new Linear(hiddenFeatures, outFeatures, rng, bias, device));
        Drop2 = RegisterModule("drop2", new Dropout(drop, rng, device));
    }

    /// <summary>An MLP in -> hidden -> in.</summary>
    public Mlp(int inFeatures, int hiddenFeatures, RandomSource rng, Func<Tensor, Tensor>? activation = null, float drop = 0f,
        bool bias = true, Device? device = null) : this(inFeatures, hiddenFeatures, inFeatures, rng, activation, drop, bias, device) { }

    public Linear Fc1 { get; }
    public Dropout Drop1 { get; }
    public Linear Fc2 { get; }
    public Dropout Drop2 { get; }

    public override Tensor Forward(Tensor x)
    {
        // Each intermediate is freed once the next op has read it (the tape keeps what backward needs).
        using var scope = TensorScope.Begin();
        var hidden = _biasGelu
            ? Ops.Linear(x, Fc1.Weight).Consume(h => Ops.BiasGelu(h, Fc1.Bias!))
            : Fc1.Forward(x).Consume(_activation);
        return scope.Keep(hidden.Consume(Drop1.Forward).Consume(Fc2.Forward).Consume(Drop2.Forward));
    }
}
