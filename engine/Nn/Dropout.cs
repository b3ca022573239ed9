using Sbp.Rng;
using Sbp.Tensors;

namespace Sbp.Nn;

/// <summary>
/// Dropout (<see cref="Ops.Dropout"/>): in training mode zeroes each element with probability p and
/// scales the rest by 1 / (1 - p); in eval mode (or p = 0) the identity (a free view). Its masks come from a source of its own
/// (random source "rng", forked from the constructor's source), so they depend only on the seed
/// and on how many batches this module has seen.
/// </summary>
public sealed class Dropout : Module
{
    public Dropout(float p, RandomSource rng, Device? device = null) : base(device)
    {
        CheckProbability("Dropout", p);
        P = p;
        RegisterRandomSource("rng", Fork(rng, "dropout"));
    }

    public float P { get; }

    public override Tensor Forward(Tensor x) =>
        Training && P > 0f ? Ops.Dropout(x, P, GetRandomSource("rng"), training: true) : IdentityView(x);

    internal static void CheckProbability(string layer, float p)
    {
        if (!(p >= 0f && p < 1f))
            throw new ArgumentOutOfRangeException(nameof(p), $"{layer}({p}): the drop probability must be in [0, 1).");
    }

    public override string ToString() => $"Dropout(p: {P})";
}

/// <summary>
/// Stochastic depth (<see cref="Ops.DropPath"/>): in training mode drops each sample's whole residual branch (all elements of
/// x[i, ...]) with probability p and scales kept samples by 1 / (1 - p), as timm's DropPath; the
/// identity in eval mode or at p = 0. Random source "rng" of its own, as <see cref="Dropout"/>.
/// </summary>
public sealed class DropPath : Module
{
    public DropPath(float p, RandomSource rng, Device? device = null) : base(device)
    {
        Dropout.CheckProbability("DropPath", p);
        P = p;
        RegisterRandomSource("rng", Fork(rng, "drop_path"));
    }

    public float P { get; }

    public override Tensor Forward(Tensor x) =>
        Training && P > 0f ? Ops.DropPath(x, P, GetRandomSource("rng"), training: true) : IdentityView(x);

    public override string ToString() => $"DropPath(p: {P})";
}
