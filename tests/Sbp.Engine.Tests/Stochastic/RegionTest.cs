using Sbp.Engine.Tests.Support;
using Sbp.Tensors;

namespace Sbp.Engine.Tests.Stochastic;

/// <summary>What the region message, rule and replay tests share: a small input and weight, and the advice every mixing refusal ends with.</summary>
public abstract class RegionTest : DeviceTest
{
    protected const string MixingAdvice = " Ops that mix positions along the region's dimension (convolutions with kernel > 1 along it, batch norm in training mode, " +
        "pooling or reductions across it) cannot run inside a region: move the op out of the region (end the region before it), or run it over another dimension.";

    /// <summary>x [2, positions, 4] and w [4, 4], both requiring grad.</summary>
    protected (Tensor x, Tensor w) Inputs(int positions = 8)
    {
        var x = T(Rand.Uniform(3, 2 * positions * 4), 2, positions, 4);
        x.RequiresGrad = true;
        var w = T(Rand.Uniform(4, 16, -0.5f, 0.5f), 4, 4);
        w.RequiresGrad = true;
        return (x, w);
    }
}
