using Sbp.Autograd;
using Sbp.Rng;
using Sbp.Stochastic;
using Sbp.Tensors;

namespace Sbp.Engine.Tests.Stochastic;

public class KeepMaskTests
{
    [Test]
    public void StridedKeepsEveryStrideThPositionFromTheOffset()
    {
        var m = KeepMask.Strided(10, 4, 2);
        Assert.That(m.Kept.ToArray(), Is.EqualTo(new[] { 2, 6 }));
        Assert.That(m.IsKept(6) && !m.IsKept(7), Is.True);
        Assert.Throws<ArgumentOutOfRangeException>(() => KeepMask.Strided(10, 4, 4));
    }

    [TestCase(0.5, 2, 1)]
    [TestCase(0.25, 4, 2)]
    [TestCase(1.0 / 8, 8, 4)]
    public void StridedPolicyUsesTheCentredOffsetEveryStep(double keep, int stride, int offset)
    {
        var gen = new KeepMaskGenerator(new KeepMaskPolicy(MaskKind.Strided, keep, Seed: 3));
        for (int step = 0; step < 3; step++)
        {
            var m = gen.Next(step, layer: step, 16);
            Assert.That(m.Kept.ToArray(), Is.EqualTo(Enumerable.Range(0, 16).Where(i => i % stride == offset).ToArray()));
        }
    }

    [Test]
    public void StridedRandomOffsetVariesWithTheStepAndRepeatsWithTheSeed()
    {
        var policy = new KeepMaskPolicy(MaskKind.Strided, 0.25, Seed: 11) { RandomOffset = true };
        var a = new KeepMaskGenerator(policy);
        var b = new KeepMaskGenerator(policy);
        var offsets = Enumerable.Range(0, 40).Select(s => a.Next(s, 0, 32).Kept[0]).ToArray();
        Assert.That(offsets.Distinct().Count(), Is.EqualTo(4), "every offset of 0..3 appears over 40 steps");
        Assert.That(Enumerable.Range(0, 40).Select(s => b.Next(s, 0, 32).Kept[0]), Is.EqualTo(offsets));
        Assert.That(Enumerable.Range(0, 40).All(s => a.Next(s, 0, 32).KeptCount == 8), Is.True);
    }

    [Test]
    public void GridMatchesTheCheckerboardFormulaAndItsOffsetsPartition()
    {
        int[] dims = [3, 5, 7];
        var union = KeepMask.FromIndices(105, []);
        for (int o = 0; o < 3; o++)
        {
            var m = KeepMask.Grid(dims, 3, o);
            for (int t = 0; t < 3; t++)
            for (int i = 0; i < 5; i++)
            for (int j = 0; j < 7; j++)
                Assert.That(m.IsKept((t * 5 + i) * 7 + j), Is.EqualTo((t + i + j) % 3 == o));
            Assert.That(union.Overlaps(m), Is.False);
            union = union.Union(m);
        }
        Assert.That(union.KeptCount, Is.EqualTo(105));
        var complement = KeepMask.Grid([4, 6], 4, 1, complement: true);
        Assert.That(complement.KeptCount, Is.EqualTo(18), "drops 1/4 of 24");
    }

    [Test]
    public void GridPolicyUsesTheComplementAboveOneHalf()
    {
        var gen = new KeepMaskGenerator(new KeepMaskPolicy(MaskKind.Grid, 0.75, Seed: 5));
        var m = gen.Next(0, 0, 8, 8);
        Assert.That(m.KeptCount, Is.EqualTo(48));
        var half = new KeepMaskGenerator(new KeepMaskPolicy(MaskKind.Grid, 0.5, Seed: 5)).Next(0, 0, 8, 8);
        Assert.That(half.KeptCount, Is.EqualTo(32));
        Assert.Throws<ArgumentException>(() => new KeepMaskGenerator(new KeepMaskPolicy(MaskKind.Grid, 0.3)).Next(0, 0, 4, 4));
    }

    [Test]
    public void NestedGridMasksKeepAllChildrenOfKeptParents()
    {
        var gen = new KeepMaskGenerator(new KeepMaskPolicy(MaskKind.Grid, 0.5, Seed: 9));
        int[][] stages = [[8, 12], [4, 6], [2, 3]];
        int[][] factors = [[2, 2], [2, 2]];
        var masks = gen.NextNested(step: 4, layer: 0, stages, factors);
        for (int s = 0; s + 1 < stages.Length; s++)
        {
            int fh = stages[s][0], fw = stages[s][1], cw = stages[s + 1][1];
            for (int i = 0; i < fh; i++)
            for (int j = 0; j < fw; j++)
                Assert.That(masks[s].IsKept(i * fw + j), Is.EqualTo(masks[s + 1].IsKept(i / 2 * cw + j / 2)));
            Assert.That(masks[s].KeepRatio, Is.EqualTo(masks[s + 1].KeepRatio).Within(1e-12));
        }
    }

    [Test]
    public void RandomKeepsAnExactCountAroundPinnedPositions()
    {
        var gen = new KeepMaskGenerator(new KeepMaskPolicy(MaskKind.Random, 0.3, Seed: 1) { Pinned = [0], Scope = MaskScope.Layer });
        var seen = new HashSet<int>();
        for (int layer = 0; layer < 20; layer++)
        {
            var m = gen.Next(step: 2, layer, 51);
            Assert.That(m.KeptCount, Is.EqualTo(15 + 1), "round(0.3 x 50) drawn plus the pinned CLS token");
            Assert.That(m.IsKept(0), Is.True);
            foreach (var i in m.Kept) seen.Add(i);
        }
        Assert.That(seen.Count, Is.GreaterThan(45), "independent per-layer masks cover the positions");
        var shared = new KeepMaskGenerator(new KeepMaskPolicy(MaskKind.Random, 0.3, Seed: 1));
        Assert.That(shared.Next(2, 0, 51), Is.EqualTo(shared.Next(2, 7, 51)), "a shared mask is the same for every layer");
        Assert.That(shared.Next(2, 0, 51), Is.Not.EqualTo(shared.Next(3, 0, 51)), "and redrawn per step");
    }

    [Test]
    public void RandomDrawIsUniformOverPositions()
    {
        var counts = new int[10];
        var rng = new RandomSource(77);
        for (int trial = 0; trial < 4000; trial++)
            foreach (var i in KeepMask.Random(10, 3, rng).Kept) counts[i]++;
        foreach (var c in counts) Assert.That(c, Is.EqualTo(1200).Within(120));
    }

    [Test]
    public void GradMaskIsTheIdentityForwardAndMasksTheGradient()
    {
        var device = Device.CreateCpu("gradmask");
        using (var scope = TensorScope.Begin())
        {
            var x = Tensor.FromArray(Enumerable.Range(0, 2 * 5 * 3).Select(i => i * 0.1f).ToArray(), new Shape(2, 5, 3), device);
            x.RequiresGrad = true;
            var mask = KeepMask.Strided(5, 2, 1);
            using var tape = Tape.Begin();
            var y = Ops.GradMask(x, 1, mask);
            Assert.That(y.ToArray(), Is.EqualTo(x.ToArray()));
            tape.Backward(Ops.Sum(Ops.Mul(y, y)));
            var xs = x.ToArray();
            var g = x.Grad!.ToArray();
            for (int i = 0; i < xs.Length; i++)
                Assert.That(g[i], Is.EqualTo(mask.IsKept(i / 3 % 5) ? 2 * xs[i] : 0f).Within(1e-6));
        }
        Assert.That(device.Pool.InUseBytes, Is.EqualTo(0));
    }

    [Test]
    public void GradientsOfDisjointMasksAddUpToTheirUnion()
    {
        var device = Device.CreateCpu("linearity");
        using var scope = TensorScope.Begin();
        var w = Tensor.FromArray(Enumerable.Range(0, 12).Select(i => (i % 5 - 2) * 0.3f).ToArray(), new Shape(4, 3), device);
        w.RequiresGrad = true;
        float[] Grad(KeepMask m)
        {
            w.ZeroGrad();
            using var tape = Tape.Begin();
            var x = Tensor.FromArray(Enumerable.Range(0, 7 * 3).Select(i => (i % 4) * 0.25f - 0.4f).ToArray(), new Shape(7, 3), device);
            var h = Ops.GradMask(Ops.Gelu(Ops.Linear(x, w)), 0, m);
            tape.Backward(Ops.Sum(Ops.Mul(h, h)));
            return w.Grad!.ToArray();
        }
        var all = Grad(KeepMask.All(7));
        var parts = Enumerable.Range(0, 3).Select(o => Grad(KeepMask.Strided(7, 3, o))).ToArray();
        for (int i = 0; i < all.Length; i++)
            Assert.That(parts.Sum(p => p[i]), Is.EqualTo(all[i]).Within(1e-5));
    }
}
