using Sbp.Rng;
using Sbp.Tensors;

namespace Sbp.Nn;

/// <summary>
/// y = x W^T + b (<see cref="Ops.Linear"/>) on x [..., in] with weight [out, in] and bias [out]
/// (parameters "weight", "bias"). PyTorch's default initialization: weight
/// kaiming_uniform(a = sqrt 5), i.e. U(+-1/sqrt(in)), and bias U(+-1/sqrt(in)), drawn from
/// the constructor's random generator in that order.
/// </summary>
public sealed class Linear : Module
{
    public Linear(int inFeatures, int outFeatures, RandomSource rng, bool bias = true, Device? device = null) : base(device)
    {
        ArgumentNullException.ThrowIfNull(rng);
        if (inFeatures < 1 || outFeatures < 1)
            throw new ArgumentOutOfRangeException(nameof(inFeatures), $"Linear({inFeatures}, {outFeatures}): both feature counts must be >= 1.");
        InFeatures = inFeatures;
        OutFeatures = outFeatures;
        Init.KaimingUniform(RegisterParameter("weight", NewState(outFeatures, inFeatures)), rng, MathF.Sqrt(5f));
        if (bias)
        {
            float bound = 1f / MathF.Sqrt(inFeatures);
            Init.Uniform(RegisterParameter("bias", NewState(outFeatures)), -bound, bound, rng);
        }
    }

    public int InFeatures { get; }
    public int OutFeatures { get; }
    /// <summary>[out, in] (read through the registry, so <see cref="Module.WithParameters"/> can substitute it).</summary>
    public Tensor Weight => Parameter("weight");
    /// <summary>[out], or null without bias.</summary>
    public Tensor? Bias => FindParameter("bias");

    public override Tensor Forward(Tensor x) => Ops.Linear(x, Weight, Bias);

    public override string ToString() => $"Linear({InFeatures}, {OutFeatures}{(Bias is null ? ", bias: false" : "")})";
}
