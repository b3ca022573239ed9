using Sbp.Stochastic;
using Sbp.Tensors;

namespace Sbp.Models.Architectures;

/// <summary>The models' one entry to SBP regions: plain backprop when no policy or mask is given.</summary>
internal static class SbpRegions
{
    /// <summary>body(x) as an SBP region over dimension <paramref name="dim"/> when both a policy and a mask are given, else body(x) plainly.</summary>
    public static Tensor Run(string name, Tensor x, int dim, KeepMask? mask, SbpPolicy? policy, Func<Tensor, Tensor> body) =>
        policy is null || mask is null ? body(x) : SbpRegion.Run(name, x, dim, mask, body, policy.Options);
}
