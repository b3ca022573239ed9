using Sbp.Nn;
using Sbp.Rng;

namespace Sbp.Models.Architectures;

/// <summary>The transformer initialization of (Video) Swin and ViT: Linear weights trunc_normal(std 0.02), biases 0, LayerNorm 1 and 0.</summary>
internal static class Inits
{
    public static void TransformerDefaults(Module root, RandomSource rng)
    {
        foreach (var (_, m) in root.NamedModules())
        {
            switch (m)
            {
                case Linear l:
                    Init.TruncatedNormal(l.Weight, 0.02f, rng);
                    if (l.Bias is { } b) Init.Zeros(b);
                    break;
                case LayerNorm n:
                    if (n.Weight is { } w) Init.Ones(w);
                    if (n.Bias is { } nb) Init.Zeros(nb);
                    break;
            }
        }
    }

    /// <summary>Drop-path rates rising linearly from 0 to <paramref name="max"/> over <paramref name="blocks"/> blocks (torch.linspace).</summary>
    public static float[] DropPathRates(float max, int blocks) =>
        Enumerable.Range(0, blocks).Select(i => blocks == 1 ? 0f : (float)(max * i / (blocks - 1.0))).ToArray();
}
