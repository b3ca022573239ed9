using Sbp.Rng;
using Sbp.Tensors;

namespace Sbp.Backends;

// Random kernels. Element i of an output uses the Philox bits stream.Bits(i) = Philox.Bits(key, offset + i),
// so a GPU kernel (one thread per element or per Philox block) reproduces the CPU's result bit-exactly.
public partial interface IBackend
{
    /// <summary>
    /// Keep masks (dropout, drop path): with u_i = Philox.Uniform(stream.Bits(i)) (24 random bits),
    /// mask[i] = scale when u_i &gt;= 1f - keepProbability (the drop threshold, computed in float32),
    /// else 0. Element i is kept with probability keepProbability. mask is overwritten. (Ops.Dropout
    /// passes keepProbability = 1 - ceil(p 2^24) / 2^24, for which the rule is exactly u_i &gt;= p.)
    /// </summary>
    void BernoulliMask(Tensor mask, RandomStream stream, float keepProbability, float scale);
}
