using Sbp.Nn;
using Sbp.Rng;
using Sbp.Tensors;

namespace Sbp.Models.Architectures;

/// <summary>
/// The detector's temporal head on per-frame features [B, T, F]: "proj" (Linear F -> D), plus a
/// sinusoidal position encoding over T (made from T, so any clip length works), transformer
/// blocks ("blocks.i", causal for online detection), "norm", and "classifier" (Linear D -> classes):
/// logits [B, T, classes]. Trained with the full gradient (no SBP regions).
/// </summary>
public sealed class TemporalHead : Module
{
    readonly List<VitBlock> _blocks = [];

    public TemporalHead(int features, int dim, int depth, int heads, int classes, bool causal, RandomSource rng, Device? device = null) : base(device)
    {
        Dim = dim;
        Proj = RegisterModule("proj", new Linear(features, dim, rng, device: device));
        var blocks = RegisterModule("blocks", new Sequential(device));
        for (int i = 0; i < depth; i++)
        {
            var block = new VitBlock(dim, heads, 4f, true, 0f, rng, causal, device);
            blocks.Append(block);
            _blocks.Add(block);
        }
        Norm = RegisterModule("norm", new LayerNorm(dim, device: device));
        Classifier = RegisterModule("classifier", new Linear(dim, classes, rng, device: device));
    }

    public int Dim { get; }
    public Linear Proj { get; }
    public IReadOnlyList<VitBlock> Blocks => _blocks;
    public LayerNorm Norm { get; }
    public Linear Classifier { get; }

    /// <summary>
    /// Amplitude of the sinusoidal position encoding added to the projected frame features. Unit, as in
    /// the transformer: the detector initializes "proj" so the projected features are of order 1 too
    /// (with the transformer's 0.02 init they were ~0.05 and the encoding drowned them).
    /// </summary>
    public const float PositionScale = 1f;

    public override Tensor Forward(Tensor x)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (x.Rank != 3 || x.Shape[2] != Proj.InFeatures)
            throw new ShapeMismatchException($"TemporalHead: the input must be per-frame features [B, T, {Proj.InFeatures}], got {x.Shape}.");
        using var scope = TensorScope.Begin();
        int t = x.Shape[1];
        var pe = Constant("positions", t, () => Tensor.FromArray(SinusoidalPositions.Table(t, Dim).Select(v => v * PositionScale).ToArray(), new Shape(t, Dim), Device));
        var h = Ops.Add(Proj.Forward(x), pe);
        foreach (var block in _blocks) h = block.Forward(h);
        return scope.Keep(Classifier.Forward(Norm.Forward(h)));
    }
}
