using Sbp.Autograd;
using Sbp.Engine.Tests.Support;
using Sbp.Models.Architectures;
using Sbp.Rng;
using Sbp.Tensors;

namespace Sbp.Models.Tests.Architectures;

/// <summary>
/// Patch merging never collapses a 2 x 2 (or smaller) token grid into one token: there the
/// downsample only widens the channels, so the last stages and the mean-pooled head stay
/// translation equivariant (swin-micro on 32 px clips did not learn when the last merge made a
/// single token with per-quadrant weights).
/// </summary>
public sealed class SwinMergingTests : ModelTestBase
{
    // Grids by hand: swin-micro patch 4: 64 px -> 16, 8, 4, 2 (every merge spatial); 32 px -> 8, 4, 2, 2.
    // swin-nano patch 2: 16 px -> 8, 4, 2, 2; 32 px -> 16, 8, 4, 2.
    [TestCase("swin-micro", 64, new[] { true, true, true })]
    [TestCase("swin-micro", 32, new[] { true, true, false })]
    [TestCase("swin-nano", 16, new[] { true, true, false })]
    [TestCase("swin-nano", 32, new[] { true, true, true })]
    [TestCase("swin-t", 224, new[] { true, true, true })]
    public void Merges_spatially_only_above_a_2x2_grid(string name, int size, bool[] expected)
    {
        var c = (VideoSwinConfig)ModelFactory.Config(name);
        c = c with { SampleShape = [3, c.SampleShape[1], size, size] };
        var actual = Enumerable.Range(0, c.StageCount - 1).Select(s => VideoSwinTransformer.MergesSpatially(c, s)).ToArray();
        Assert.That(actual, Is.EqualTo(expected));
    }

    [Test]
    public void Channel_only_merge_keeps_the_grid_and_is_norm_then_reduction()
    {
        const int C = 6;
        var merge = Own(new PatchMerging3d(C, new RandomSource(4), Device, spatial: false));
        var x = Rand.Uniform(9, 2 * 3 * 2 * 2 * C);
        float[] y;
        using (var scope = TensorScope.Begin())
        using (Tape.NoGrad())
        {
            var t = merge.Forward(Tensor.FromArray(x, new Shape(2, 3, 2, 2, C), Device));
            Assert.That(t.Shape.ToArray(), Is.EqualTo(new[] { 2, 3, 2, 2, 2 * C }));
            y = t.ToArray();
        }
        Assert.That(merge.Reduction.Weight.Shape.ToArray(), Is.EqualTo(new[] { 2 * C, C }));
        var w = merge.Reduction.Weight.ToArray();
        var expected = new float[y.Length];
        for (int tok = 0; tok < x.Length / C; tok++)
        {
            var v = x.Skip(tok * C).Take(C).Select(a => (double)a).ToArray();
            double mean = v.Average(), var = v.Select(a => (a - mean) * (a - mean)).Average();
            var n = v.Select(a => (a - mean) / Math.Sqrt(var + 1e-5)).ToArray();   // LayerNorm weight 1, bias 0
            for (int o = 0; o < 2 * C; o++)
                expected[tok * 2 * C + o] = (float)Enumerable.Range(0, C).Sum(i => w[o * C + i] * n[i]);
        }
        Assert.That(y, Is.EqualTo(expected).Within(1e-4f));
    }

    [Test]
    public void Swin_micro_on_32_px_clips_ends_on_a_2x2_grid()
    {
        var m = (VideoSwinTransformer)Own(ModelFactory.Create("swin-micro", new RandomSource(2), Device, numClasses: 3, height: 32, width: 32));
        Assert.That(m.Stages[2].Downsample!.Spatial, Is.False);
        Assert.That(m.Stages[1].Downsample!.Spatial, Is.True);
        using var scope = TensorScope.Begin();
        using var noGrad = Tape.NoGrad();
        var y = m.Forward(Tensor.FromArray(Rand.Uniform(3, 2 * 3 * 16 * 32 * 32), new Shape(2, 3, 16, 32, 32), Device));
        Assert.That(y.Shape.ToArray(), Is.EqualTo(new[] { 2, 3 }));
        Assert.That(y.ToArray(), Has.All.Not.NaN);
    }
}
