using Sbp.Rng;

namespace Sbp.Stochastic;

/// <summary>How SBP keep masks are drawn (docs/SBP.md section 2).</summary>
public enum MaskKind
{
    /// <summary>Every s-th position, s = 1/keep; offset centred (s/2) or drawn per step.</summary>
    Strided,
    /// <summary>2-D/3-D checkerboard family; offset drawn per step; complement rule for keep &gt; 1/2.</summary>
    Grid,
    /// <summary>Exactly round(keep x |D|) positions without replacement.</summary>
    Random,
}

/// <summary>
/// How widely one drawn mask is shared (docs/SBP.md section 2). Independent masks per layer compose as an
/// intersection: an early layer's input gradient survives only where every later region kept the
/// position (about keep^depth of them); a mask shared by the layers of a step keeps keep of them.
/// </summary>
public enum MaskScope
{
    /// <summary>Each layer draws its own mask every step (the paper's wording: "randomly and independently for each network layer in each training step").</summary>
    Layer,
    /// <summary>One mask per step for every layer (with a fixed strided mask, the same as <see cref="Model"/>: the official CVPR code).</summary>
    Step,
    /// <summary>One mask for every layer and step (the official LSTR code).</summary>
    Model,
}

/// <summary>
/// A keep-mask recipe: kind, keep ratio, seed, and options. <see cref="KeepMaskGenerator"/> turns
/// it into masks per training step and layer, as <see cref="Scope"/> says.
/// </summary>
public sealed record KeepMaskPolicy(MaskKind Kind, double KeepRatio, ulong Seed = 0)
{
    /// <summary>Strided only: draw the offset each step instead of the fixed centred offset.</summary>
    public bool RandomOffset { get; init; }

    /// <summary>Positions that are always kept (e.g. the CLS token); random masks draw around them.</summary>
    public IReadOnlyList<int> Pinned { get; init; } = [];

    /// <summary>How widely one drawn mask is shared: per layer, per step (the default) or for the whole run.</summary>
    public MaskScope Scope { get; init; } = MaskScope.Step;
}

/// <summary>
/// Draws keep masks from a <see cref="KeepMaskPolicy"/>. Deterministic: the mask depends only on
/// the policy's seed, the step and (for per-layer masks) the layer index.
/// </summary>
public sealed class KeepMaskGenerator
{
    public KeepMaskGenerator(KeepMaskPolicy policy)
    {
        if (policy.KeepRatio is <= 0 or > 1 || double.IsNaN(policy.KeepRatio))
            throw new ArgumentOutOfRangeException(nameof(policy), $"KeepMaskPolicy: keep ratio {policy.KeepRatio} must be in (0, 1].");
        if (!Supports(policy.Kind, policy.KeepRatio))
            throw new ArgumentException($"KeepMaskPolicy: {policy.Kind.ToString().ToLowerInvariant()} masks need a keep ratio of 1/s" +
                $"{(policy.Kind == MaskKind.Grid ? " or 1 - 1/s" : "")} for an integer s, got {policy.KeepRatio}; use a random mask (MaskKind.Random) for other ratios.", nameof(policy));
        Policy = policy;
    }

    public KeepMaskPolicy Policy { get; }

    /// <summary>
    /// The mask for one step and layer over positions of <paramref name="dims"/>: [N] for strided and
    /// random masks, [H, W] or [T, H, W] for grid masks (positions numbered row-major). A mask that
    /// would keep nothing (a stride longer than a tiny dimension, a count that rounds to zero) keeps
    /// the centre position, as the official LSTR sampler does: its <see cref="KeepMask.KeepRatio"/> is
    /// then the effective keep ratio, above the policy's. An empty dimension gives the empty mask.
    /// </summary>
    public KeepMask Next(long step, int layer, params int[] dims)
    {
        var mask = Draw(step, layer, dims);
        return mask.KeptCount > 0 || mask.Size == 0 ? mask : KeepMask.FromIndices(mask.Size, [mask.Size / 2]);
    }

    KeepMask Draw(long step, int layer, int[] dims)
    {
        var rng = Policy.Scope switch
        {
            MaskScope.Model => new RandomSource(Policy.Seed).Split(ulong.MaxValue),
            MaskScope.Step => new RandomSource(Policy.Seed).Split((ulong)step).Split(0UL),
            _ => new RandomSource(Policy.Seed).Split((ulong)step).Split((ulong)layer + 1),
        };
        int size = dims.Aggregate(1, (p, d) => checked(p * d));
        var pinned = Policy.Pinned.ToArray();
        if (Policy.KeepRatio == 1 || size == 0) return KeepMask.All(size);
        switch (Policy.Kind)
        {
            case MaskKind.Strided:
            {
                int s = IntegerStride(Policy.KeepRatio);
                int offset = Policy.RandomOffset ? (int)(rng.NextUniform() * s) : s / 2;
                return KeepMask.Strided(size, s, offset).WithPinned(pinned);
            }
            case MaskKind.Grid:
            {
                bool complement = Policy.KeepRatio > 0.5;
                int s = IntegerStride(complement ? 1 - Policy.KeepRatio : Policy.KeepRatio);
                int offset = (int)(rng.NextUniform() * s);
                return KeepMask.Grid(dims, s, offset, complement).WithPinned(pinned);
            }
            default:
            {
                var free = Enumerable.Range(0, size).Except(pinned).ToArray();
                int count = (int)Math.Round(Policy.KeepRatio * free.Length, MidpointRounding.AwayFromZero);
                var drawn = KeepMask.Random(free.Length, count, rng);
                return KeepMask.FromIndices(size, drawn.Kept.ToArray().Select(i => free[i]).Concat(pinned));
            }
        }
    }

    /// <summary>
    /// Nested grid masks for a pyramid of stages (finest first), drawn once at the coarsest stage and
    /// upsampled, so a position kept at stage i+1 keeps all its children at stage i.
    /// <paramref name="stageDims"/>[i+1] times <paramref name="factors"/>[i] must equal stageDims[i].
    /// </summary>
    public IReadOnlyList<KeepMask> NextNested(long step, int layer, int[][] stageDims, int[][] factors)
    {
        if (stageDims.Length == 0 || factors.Length != stageDims.Length - 1)
            throw new ArgumentException("KeepMaskGenerator.NextNested: need one factor list between each pair of stages.");
        var masks = new KeepMask[stageDims.Length];
        masks[^1] = Next(step, layer, stageDims[^1]);
        for (int i = stageDims.Length - 2; i >= 0; i--)
        {
            var expected = stageDims[i + 1].Zip(factors[i], (d, f) => d * f);
            if (!expected.SequenceEqual(stageDims[i]))
                throw new ArgumentException($"KeepMaskGenerator.NextNested: stage {i} dims [{string.Join(", ", stageDims[i])}] are not stage {i + 1} dims times [{string.Join(", ", factors[i])}].");
            masks[i] = masks[i + 1].Upsample(stageDims[i + 1], factors[i]);
        }
        return masks;
    }

    /// <summary>The stride of a ratio the constructor accepted (<see cref="Supports"/>).</summary>
    static int IntegerStride(double keep) => StrideOf(keep) ?? throw new InvalidOperationException($"KeepMaskPolicy: no integer stride for keep ratio {keep}.");

    /// <summary>s when <paramref name="keep"/> is 1/s for an integer s, else null.</summary>
    public static int? StrideOf(double keep)
    {
        // Relative tolerance, and no cast of an out-of-range 1/keep (casts saturate: keep 0 would be stride 2^31 - 1).
        if (!(keep > 0 && keep <= 1)) return null;
        double s = Math.Round(1 / keep);
        return s <= int.MaxValue && Math.Abs(s * keep - 1) <= 1e-9 ? (int)s : null;
    }

    /// <summary>Whether <paramref name="kind"/> can draw masks at <paramref name="keep"/> (strided: 1/s; grid: 1/s or 1 - 1/s; random: any).</summary>
    public static bool Supports(MaskKind kind, double keep) => kind switch
    {
        MaskKind.Strided => StrideOf(keep) is not null,
        MaskKind.Grid => StrideOf(keep) is not null || (keep > 0.5 && keep < 1 && StrideOf(1 - keep) is not null),
        _ => keep is > 0 and <= 1,
    };
}
