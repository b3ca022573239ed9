using Sbp.Tensors;

namespace Sbp.Nn;

/// <summary>
/// Layer normalization (<see cref="Ops.LayerNorm"/>) over the trailing <c>normalizedShape</c> axes
/// (biased variance, eps inside the square root), with an elementwise affine weight (ones) and bias (zeros) of that shape,
/// parameters "weight" and "bias", unless <c>elementwiseAffine</c> is off.
/// </summary>
public sealed class LayerNorm : Module
{
    readonly int[] _normalizedShape;

    public LayerNorm(int[] normalizedShape, float eps = 1e-5f, bool elementwiseAffine = true, bool bias = true, Device? device = null) : base(device)
    {
        ArgumentNullException.ThrowIfNull(normalizedShape);
        if (normalizedShape.Length == 0 || normalizedShape.Any(d => d < 1))
            throw new ArgumentException($"LayerNorm([{string.Join(", ", normalizedShape)}]): the normalized shape needs at least one axis, each >= 1.");
        if (!(eps > 0f)) throw new ArgumentOutOfRangeException(nameof(eps), $"LayerNorm: eps must be > 0, got {eps}.");
        _normalizedShape = (int[])normalizedShape.Clone();
        Eps = eps;
        if (elementwiseAffine)
        {
            Init.Ones(RegisterParameter("weight", NewState(_normalizedShape)));
            if (bias) Init.Zeros(RegisterParameter("bias", NewState(_normalizedShape)));
        }
    }

    /// <summary>Normalizes over the last axis, of size <paramref name="dim"/>.</summary>
    public LayerNorm(int dim, float eps = 1e-5f, bool elementwiseAffine = true, bool bias = true, Device? device = null)
        : this([dim], eps, elementwiseAffine, bias, device) { }

    public IReadOnlyList<int> NormalizedShape => _normalizedShape;
    public float Eps { get; }
    /// <summary>normalizedShape, or null without affine.</summary>
    public Tensor? Weight => FindParameter("weight");
    /// <summary>normalizedShape, or null without affine or bias.</summary>
    public Tensor? Bias => FindParameter("bias");

    /// <summary>
    /// Set where the output only feeds GEMMs (a block's attention projections or MLP, moved through pads, rolls and window
    /// partitions at most): under autocast it is then written in the autocast type, as the GEMM would cast it, in the same
    /// pass (the same bits; Float32 otherwise).
    /// </summary>
    public bool FeedsGemm { get; init; }

    public override Tensor Forward(Tensor x) =>
        Ops.LayerNorm(x, _normalizedShape, Weight, Bias, Eps, FeedsGemm ? Sbp.Autograd.Autocast.Type : null);

    public override string ToString() => $"LayerNorm([{string.Join(", ", _normalizedShape)}], eps: {Eps})";
}
