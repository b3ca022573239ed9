using Sbp.Rng;
using Sbp.Stochastic;

namespace Sbp.Engine.Tests.Stochastic;

/// <summary>
/// The edges of KeepMask and KeepMaskGenerator that the behaviour tests (KeepMaskTests) leave open:
/// every refusal with its exception type and message, the boundaries of each check, equality and
/// hashing, the scopes' streams, and the offsets a policy draws. Written against the mutants that
/// survived the engine tests (docs/TESTING.md section 6).
/// </summary>
public class KeepMaskContractTests
{
    [Test]
    public void PositionsOutsideTheMaskAreRefusedWithTheRange()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => KeepMask.FromIndices(4, [1, 4]));
        Assert.That(e!.Message, Does.Contain("position 4 is outside 0..3"));
        Assert.Throws<ArgumentOutOfRangeException>(() => KeepMask.FromIndices(4, [-1]));
        var m = KeepMask.FromIndices(4, [3, 0, 3]);
        Assert.That(m.Kept.ToArray(), Is.EqualTo(new[] { 0, 3 }), "sorted, distinct");
    }

    [Test]
    public void KeepRatioIsKeptOverSizeAndOneForAnEmptyMask()
    {
        Assert.That(KeepMask.FromIndices(12, [1, 5, 7]).KeepRatio, Is.EqualTo(0.25));
        Assert.That(KeepMask.All(0).KeepRatio, Is.EqualTo(1.0));
        Assert.That(KeepMask.FromIndices(3, []).KeepRatio, Is.EqualTo(0.0));
    }

    [Test]
    public void StrideAndOffsetAreCheckedAtEachBoundary()
    {
        Assert.That(KeepMask.Strided(5, 1, 0), Is.EqualTo(KeepMask.All(5)), "stride 1 keeps everything");
        Assert.That(KeepMask.Strided(6, 3, 2).Kept.ToArray(), Is.EqualTo(new[] { 2, 5 }), "the largest offset");
        foreach (var (stride, offset) in new[] { (0, 0), (2, -1), (2, 2), (-1, 0) })
        {
            var e = Assert.Throws<ArgumentOutOfRangeException>(() => KeepMask.Strided(6, stride, offset));
            Assert.That(e!.Message, Does.Contain($"KeepMask.Strided: need stride >= 1 and 0 <= offset < stride, got stride {stride}, offset {offset}"));
        }
        var g = Assert.Throws<ArgumentOutOfRangeException>(() => KeepMask.Grid([2, 2], 2, 3));
        Assert.That(g!.Message, Does.Contain("KeepMask.Grid: need stride"));
    }

    [Test]
    public void GridNeedsTwoOrThreeAxesAndFollowsTheFormulaIn3D()
    {
        foreach (var dims in new[] { new[] { 4 }, new[] { 2, 2, 2, 2 } })
        {
            var e = Assert.Throws<ArgumentException>(() => KeepMask.Grid(dims, 2, 0));
            Assert.That(e!.Message, Does.Contain($"KeepMask.Grid: dims must have 2 or 3 axes, got [{string.Join(", ", dims)}]"));
        }
        var m = KeepMask.Grid([2, 3, 4], 3, 1);
        var expected = new List<int>();
        for (int t = 0; t < 2; t++)
            for (int y = 0; y < 3; y++)
                for (int x = 0; x < 4; x++)
                    if ((t + y + x) % 3 == 1) expected.Add((t * 3 + y) * 4 + x);
        Assert.That(m.Kept.ToArray(), Is.EqualTo(expected));
        var complement = KeepMask.Grid([2, 3, 4], 3, 1, complement: true);
        Assert.That(complement.KeptCount + m.KeptCount, Is.EqualTo(24));
        Assert.That(complement.Overlaps(m), Is.False);
    }

    [Test]
    public void RandomCountsFromZeroToSizeAndRefusesOthers()
    {
        var rng = new RandomSource(5);
        Assert.That(KeepMask.Random(5, 5, rng), Is.EqualTo(KeepMask.All(5)));
        Assert.That(KeepMask.Random(5, 0, rng).KeptCount, Is.Zero);
        foreach (int count in new[] { -1, 6 })
        {
            var e = Assert.Throws<ArgumentOutOfRangeException>(() => KeepMask.Random(5, count, rng));
            Assert.That(e!.Message, Does.Contain($"KeepMask.Random: cannot keep {count} of 5 positions"));
        }
    }

    [Test]
    public void UpsampleRefusesDimsThatDoNotDescribeTheMask()
    {
        var m = KeepMask.FromIndices(4, [0, 3]);
        Assert.That(m.Upsample([2, 2], [2, 1]).Kept.ToArray(), Is.EqualTo(new[] { 0, 2, 5, 7 }), "parents (0, 0) and (1, 1) of a [4, 2] grid");
        foreach (var (dims, factors) in new[] { (new[] { 2, 2 }, new[] { 2 }), (new[] { 2, 3 }, new[] { 2, 2 }) })
        {
            var e = Assert.Throws<ArgumentException>(() => m.Upsample(dims, factors));
            Assert.That(e!.Message, Does.Contain($"KeepMask.Upsample: coarse dims [{string.Join(", ", dims)}] do not describe a mask of 4 positions"));
        }
    }

    [Test]
    public void PinningUnionAndOverlap()
    {
        var m = KeepMask.FromIndices(6, [1, 4]);
        Assert.That(m.WithPinned(), Is.SameAs(m), "nothing to pin: the same mask");
        Assert.That(m.WithPinned(0).Kept.ToArray(), Is.EqualTo(new[] { 0, 1, 4 }));
        Assert.That(m.Union(KeepMask.FromIndices(6, [2])).Kept.ToArray(), Is.EqualTo(new[] { 1, 2, 4 }));
        Assert.That(m.Overlaps(KeepMask.FromIndices(6, [4, 5])), Is.True);
        Assert.That(m.Overlaps(KeepMask.FromIndices(6, [0, 5])), Is.False);
        var union = Assert.Throws<ArgumentException>(() => m.Union(KeepMask.All(5)));
        Assert.That(union!.Message, Does.Contain("KeepMask.Union: masks over 6 and 5 positions"));
        var overlaps = Assert.Throws<ArgumentException>(() => m.Overlaps(KeepMask.All(7)));
        Assert.That(overlaps!.Message, Does.Contain("KeepMask.Overlaps: masks over 6 and 7 positions"));
        Assert.That(m.ToFloatArray(), Is.EqualTo(new[] { 0f, 1f, 0f, 0f, 1f, 0f }));
        using var indices = m.ToIndices();
        Assert.That(indices.ToIntArray(), Is.EqualTo(new[] { 1, 4 }));
    }

    [Test]
    public void EqualityHashingAndText()
    {
        var a = KeepMask.FromIndices(6, [1, 4]);
        Assert.That(a.Equals(KeepMask.FromIndices(6, [4, 1])), Is.True);
        Assert.That(a.Equals((object)KeepMask.FromIndices(6, [4, 1])), Is.True);
        Assert.That(a.GetHashCode(), Is.EqualTo(KeepMask.FromIndices(6, [4, 1]).GetHashCode()));
        Assert.That(a.Equals(KeepMask.FromIndices(7, [1, 4])), Is.False);
        Assert.That(a.Equals(KeepMask.FromIndices(6, [1, 5])), Is.False);
        Assert.That(KeepMask.FromIndices(6, [1, 4]).Equals(new object()), Is.False);
        var empty = KeepMask.FromIndices(3, []);
        Assert.That(empty.GetHashCode(), Is.EqualTo(KeepMask.FromIndices(3, []).GetHashCode()), "an empty mask hashes too");
        Assert.That(a.ToString(), Is.EqualTo("KeepMask(keep 2/6: [1, 4])"));
        Assert.That(KeepMask.All(16).ToString(), Is.EqualTo($"KeepMask(keep 16/16: [{string.Join(", ", Enumerable.Range(0, 16))}])"));
        Assert.That(KeepMask.All(17).ToString(), Is.EqualTo($"KeepMask(keep 17/17: [{string.Join(", ", Enumerable.Range(0, 16))}, ...])"));
        Assert.That(a.Equals(null), Is.False);   // last: the compiler reads it as a null test of a
    }

    [TestCase(0.0)]
    [TestCase(-0.25)]
    [TestCase(1.5)]
    [TestCase(double.NaN)]
    public void KeepRatiosOutsideZeroToOneAreRefused(double keep)
    {
        foreach (var kind in Enum.GetValues<MaskKind>())
        {
            var e = Assert.Throws<ArgumentOutOfRangeException>(() => new KeepMaskGenerator(new KeepMaskPolicy(kind, keep)));
            Assert.That(e!.Message, Does.Contain($"keep ratio {keep} must be in (0, 1]"));
        }
    }

    [Test]
    public void RatiosAStrideCannotExpressAreRefusedNamingTheRatioGiven()
    {
        var strided = Assert.Throws<ArgumentException>(() => new KeepMaskGenerator(new KeepMaskPolicy(MaskKind.Strided, 0.75)));
        Assert.That(strided!.Message, Does.Contain("strided masks need a keep ratio of 1/s for an integer s, got 0.75; use a random mask"));
        var grid = Assert.Throws<ArgumentException>(() => new KeepMaskGenerator(new KeepMaskPolicy(MaskKind.Grid, 0.7)));
        Assert.That(grid!.Message, Does.Contain("grid masks need a keep ratio of 1/s or 1 - 1/s for an integer s, got 0.7;"));
        foreach (var kind in Enum.GetValues<MaskKind>())
            Assert.That(new KeepMaskGenerator(new KeepMaskPolicy(kind, 1)).Next(0, 0, 3, 3), Is.EqualTo(KeepMask.All(9)));
        Assert.That(new KeepMaskGenerator(new KeepMaskPolicy(MaskKind.Grid, 0.75)).Policy.KeepRatio, Is.EqualTo(0.75));
    }

    [Test]
    public void StrideOfAndSupportsAtTheirBoundaries()
    {
        Assert.That(KeepMaskGenerator.StrideOf(1), Is.EqualTo(1));
        Assert.That(KeepMaskGenerator.StrideOf(0.5), Is.EqualTo(2));
        Assert.That(KeepMaskGenerator.StrideOf(1.0 / 3), Is.EqualTo(3));
        Assert.That(KeepMaskGenerator.StrideOf(0.3), Is.Null);
        Assert.That(KeepMaskGenerator.StrideOf(0.75), Is.Null);
        Assert.That(new[] { 0, -0.5, 1e-10, 1.5, double.NaN }.Select(KeepMaskGenerator.StrideOf), Is.All.Null, "no stride outside (0, 1] or beyond int");
        Assert.That(KeepMaskGenerator.StrideOf(1.0 / 1000003), Is.EqualTo(1000003));
        (MaskKind kind, double keep, bool ok)[] table =
        [
            (MaskKind.Strided, 1, true), (MaskKind.Strided, 0.25, true), (MaskKind.Strided, 0.75, false),
            (MaskKind.Grid, 1, true), (MaskKind.Grid, 0.5, true), (MaskKind.Grid, 0.25, true), (MaskKind.Grid, 0.75, true),
            (MaskKind.Grid, 2.0 / 3, true), (MaskKind.Grid, 0.6, false), (MaskKind.Grid, 0.3, false), (MaskKind.Grid, 0, false),
            (MaskKind.Strided, 0, false), (MaskKind.Grid, 1.5, false),
            (MaskKind.Random, 1, true), (MaskKind.Random, 0.3, true), (MaskKind.Random, 0, false), (MaskKind.Random, 1.2, false),
        ];
        foreach (var (kind, keep, ok) in table)
            Assert.That(KeepMaskGenerator.Supports(kind, keep), Is.EqualTo(ok), $"{kind} at {keep}");
    }

    [Test]
    public void EmptyAndTinyDimensions()
    {
        var gen = new KeepMaskGenerator(new KeepMaskPolicy(MaskKind.Strided, 0.5));
        Assert.That(gen.Next(0, 0, 0), Is.EqualTo(KeepMask.All(0)), "an empty dimension: the empty mask");
        var sparse = new KeepMaskGenerator(new KeepMaskPolicy(MaskKind.Strided, 1.0 / 8));
        Assert.That(sparse.Next(0, 0, 3).Kept.ToArray(), Is.EqualTo(new[] { 1 }), "stride 8 over 3 positions keeps the centre");
        Assert.Throws<OverflowException>(() => gen.Next(0, 0, 65536, 65536));
    }

    [Test]
    public void RandomPolicyRoundsTheCountOfFreePositionsHalfAway()
    {
        var gen = new KeepMaskGenerator(new KeepMaskPolicy(MaskKind.Random, 0.5, Seed: 4) { Pinned = [0] });
        var m = gen.Next(3, 0, 10);
        Assert.That(m.KeptCount, Is.EqualTo(6), "round(0.5 x 9 free) = 5, plus the pinned position");
        Assert.That(m.IsKept(0), Is.True);
    }

    /// <summary>The stream a scope draws from, as KeepMaskGenerator documents it: (seed, step, layer + 1), (seed, step, 0), (seed, max).</summary>
    static RandomSource Stream(MaskScope scope, ulong seed, long step, int layer) => scope switch
    {
        MaskScope.Model => new RandomSource(seed).Split(ulong.MaxValue),
        MaskScope.Step => new RandomSource(seed).Split((ulong)step).Split(0UL),
        _ => new RandomSource(seed).Split((ulong)step).Split((ulong)layer + 1),
    };

    [Test]
    public void EachScopeDrawsFromItsOwnStream()
    {
        foreach (var scope in Enum.GetValues<MaskScope>())
        {
            var gen = new KeepMaskGenerator(new KeepMaskPolicy(MaskKind.Random, 0.25, Seed: 11) { Scope = scope });
            for (int step = 0; step < 3; step++)
                for (int layer = 0; layer < 3; layer++)
                    Assert.That(gen.Next(step, layer, 64), Is.EqualTo(KeepMask.Random(64, 16, Stream(scope, 11, step, layer))), $"{scope} step {step} layer {layer}");
        }
        var perLayer = new KeepMaskGenerator(new KeepMaskPolicy(MaskKind.Random, 0.25, Seed: 11) { Scope = MaskScope.Layer });
        var perStep = new KeepMaskGenerator(new KeepMaskPolicy(MaskKind.Random, 0.25, Seed: 11));
        for (int layer = 0; layer < 4; layer++)
            Assert.That(perLayer.Next(2, layer, 64), Is.Not.EqualTo(perStep.Next(2, layer, 64)), $"layer {layer}'s mask is its own");
    }

    [Test]
    public void GridAndStridedOffsetsAreDrawnUniformlyFromTheStepsStream()
    {
        foreach (var (keep, stride, complement) in new[] { (1.0 / 3, 3, false), (0.5, 2, false), (2.0 / 3, 3, true) })
        {
            var gen = new KeepMaskGenerator(new KeepMaskPolicy(MaskKind.Grid, keep, Seed: 2));
            var seen = new HashSet<int>();
            for (int step = 0; step < 40; step++)
            {
                int offset = (int)(Stream(MaskScope.Step, 2, step, 0).NextUniform() * stride);
                seen.Add(offset);
                Assert.That(gen.Next(step, 0, 4, 5), Is.EqualTo(KeepMask.Grid([4, 5], stride, offset, complement)), $"keep {keep} step {step}");
            }
            Assert.That(seen, Is.EquivalentTo(Enumerable.Range(0, stride)), "every offset of the family is drawn");
        }
        var strided = new KeepMaskGenerator(new KeepMaskPolicy(MaskKind.Strided, 0.25, Seed: 2) { RandomOffset = true });
        for (int step = 0; step < 20; step++)
        {
            int offset = (int)(Stream(MaskScope.Step, 2, step, 0).NextUniform() * 4);
            Assert.That(strided.Next(step, 0, 16), Is.EqualTo(KeepMask.Strided(16, 4, offset)));
        }
    }

    [Test]
    public void NestedMasksRefuseStagesThatDoNotNest()
    {
        var gen = new KeepMaskGenerator(new KeepMaskPolicy(MaskKind.Grid, 0.5));
        var none = Assert.Throws<ArgumentException>(() => gen.NextNested(0, 0, [], []));
        Assert.That(none!.Message, Does.Contain("need one factor list between each pair of stages"));
        Assert.Throws<ArgumentException>(() => gen.NextNested(0, 0, [[4, 4], [2, 2]], []));
        var wrong = Assert.Throws<ArgumentException>(() => gen.NextNested(0, 0, [[4, 6], [2, 2]], [[2, 2]]));
        Assert.That(wrong!.Message, Does.Contain("stage 0 dims [4, 6] are not stage 1 dims times [2, 2]"));
        var masks = gen.NextNested(0, 0, [[4, 4], [2, 2]], [[2, 2]]);
        Assert.That(masks[0], Is.EqualTo(masks[1].Upsample([2, 2], [2, 2])));
    }
}
