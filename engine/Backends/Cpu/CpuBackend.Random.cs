using Sbp.Rng;
using Sbp.Tensors;

namespace Sbp.Backends.Cpu;

public sealed unsafe partial class CpuBackend
{
    /// <summary>
    /// Element i uses word (Offset + i) % 4 of Philox block (Offset + i) / 4, so each block is
    /// computed once for its four elements; chunks run in parallel (elements are independent).
    /// </summary>
    public void BernoulliMask(Tensor mask, RandomStream stream, float keepProbability, float scale)
    {
        float threshold = 1f - keepProbability;
        nint p = mask.Pointer;
        uint k0 = (uint)stream.Key, k1 = (uint)(stream.Key >> 32);
        CpuLoops.For(mask.Numel, 16, (s, e) =>
        {
            float* m = (float*)p;
            long i = s;
            while (i < e)
            {
                ulong counter = stream.Offset + (ulong)i, block = counter >> 2;
                var (w0, w1, w2, w3) = Philox.Block((uint)block, (uint)(block >> 32), 0, 0, k0, k1);
                for (int word = (int)(counter & 3); word < 4 && i < e; word++, i++)
                {
                    uint bits = word switch { 0 => w0, 1 => w1, 2 => w2, _ => w3 };
                    m[i] = Philox.Uniform(bits) >= threshold ? scale : 0f;
                }
            }
        });
    }
}
