using Sbp.Autograd;
using Sbp.Engine.Tests.Support;
using Sbp.Rng;
using Sbp.Stochastic;
using Sbp.Tensors;
using static Sbp.Engine.Tests.Stochastic.RegionHarness;

namespace Sbp.Engine.Tests.Stochastic;

/// <summary>
/// What regions report and hold (docs/SBP.md invariant 7) in the cases an outside review found wrong:
/// a region name reused for another body, recompute's count of full backprop for attention, bodies
/// that record nothing, the oracle's rescale without a mask, dimensions too short for the keep ratio.
/// </summary>
public class RegionAccountingTests : DeviceTest
{
    const int B = 2, N = 8, C = 8;

    static readonly (string Name, int[] Shape)[] Parameters =
        [.. MlpParameters(C, 16), ("wq", [C, C]), ("wk", [C, C]), ("wv", [C, C])];

    /// <summary>Attention over the region's positions: its k/v projections need full saved tensors (their gradient is dense).</summary>
    static Tensor Attention(Tensor x, IReadOnlyDictionary<string, Tensor> p)
    {
        Tensor Heads(Tensor t) => Ops.Reshape(t, x.Shape[0], 1, x.Shape[1], C);
        var a = Ops.ScaledDotProductAttention(Heads(Ops.Linear(x, p["wq"])), Heads(Ops.Linear(x, p["wk"])), Heads(Ops.Linear(x, p["wv"])));
        return Ops.Reshape(a, x.Shape.ToArray());
    }

    /// <summary>Runs one region under a fresh tape; returns its report.</summary>
    RegionReport RunRegion(string name, Func<Tensor, IReadOnlyDictionary<string, Tensor>, Tensor> body, RegionOptions options, KeepMask? mask = null)
    {
        RegionReport? report = null;
        new RegionHarness(Device, 5, [B, N, C], Parameters).Run((x, p) =>
        {
            var y = SbpRegion.Run(name, x, 1, mask ?? KeepMask.Strided(N, 2, 1), t => body(t, p), options);
            report = Tape.Current!.Regions.Single();
            return y;
        });
        return report!;
    }

    [Test]
    public void A_region_name_reused_for_another_body_holds_what_that_body_needs()
    {
        string name = $"reused {Guid.NewGuid()}";
        var fresh = RunRegion($"fresh {Guid.NewGuid()}", Mlp, RegionOptions.Default);
        Assert.That(fresh.SavedBytes * 2, Is.EqualTo(fresh.FullSavedBytes), "the MLP alone holds keep x full");
        RunRegion(name, Attention, RegionOptions.Default);   // learns that attention's k/v nodes stay whole
        RunRegion(name, Attention, RegionOptions.Default);
        var reused = RunRegion(name, Mlp, RegionOptions.Default);
        Assert.That(reused.SavedBytes, Is.EqualTo(fresh.SavedBytes), "the attention body's hint must not keep the MLP's tensors whole");
        // And the hint still serves the body it was learned from.
        var again = RunRegion(name, Attention, RegionOptions.Default);
        Assert.That(again.SavedBytes, Is.EqualTo(RunRegion($"other {Guid.NewGuid()}", Attention, RegionOptions.Default).SavedBytes));
    }

    [Test]
    public void Every_caching_mode_counts_full_backprop_alike()
    {
        foreach (var (what, body) in new (string, Func<Tensor, IReadOnlyDictionary<string, Tensor>, Tensor>)[] { ("attention", Attention), ("mlp", Mlp) })
        {
            long? sparse = RunRegion(what, body, new RegionOptions(RegionMode.SparseCache)).FullSavedBytes;
            long? plainFull = RunRegion(what, body, new RegionOptions(RegionMode.SparseCache), KeepMask.All(N)).FullSavedBytes;
            Assert.That(sparse, Is.EqualTo(plainFull), $"{what}: sparse cache counts what full backprop saves");
            Assert.That(RunRegion(what, body, new RegionOptions(RegionMode.Recompute)).FullSavedBytes, Is.EqualTo(sparse), $"{what}: recompute");
            Assert.That(RunRegion(what, body, new RegionOptions(RegionMode.Checkpoint)).FullSavedBytes, Is.EqualTo(sparse), $"{what}: SBP + checkpointing");
        }
    }

    [Test]
    public void A_body_that_records_nothing_adds_no_node_and_no_gradient()
    {
        foreach (var mode in new[] { RegionMode.SparseCache, RegionMode.Recompute, RegionMode.Checkpoint })
        {
            using var scope = TensorScope.Begin();
            var x = T(Rand.Uniform(1, B * N * C), B, N, C);                      // no grad
            var frozen = T(Rand.Uniform(2, C * C, -0.5f, 0.5f), C, C);           // a frozen weight
            using var tape = Tape.Begin();
            long inUse = Device.Pool.InUseBytes;
            var y = SbpRegion.Run("frozen", x, 1, KeepMask.Strided(N, 2, 1), h => Ops.Gelu(Ops.Linear(h, frozen)), new RegionOptions(mode));
            Assert.That(y.RequiresGrad, Is.False, $"{mode}: the output requires no grad");
            Assert.That(tape.Nodes, Is.Empty, $"{mode}: no node");
            Assert.That(tape.SavedBytes, Is.Zero, $"{mode}: nothing saved");
            Assert.That(tape.Regions.Single().SavedBytes, Is.Zero, $"{mode}: the report says nothing is held");
            Assert.That(Device.Pool.InUseBytes - inUse, Is.EqualTo(y.Numel * sizeof(float)), $"{mode}: only the output is left");
            Assert.That(y.ToArray(), Is.EqualTo(Ops.Gelu(Ops.Linear(x, frozen)).ToArray()), $"{mode}: the forward is unchanged");
        }
    }

    [Test]
    public void The_oracle_with_rescale_and_no_mask_is_plain_backprop()
    {
        var h = new RegionHarness(Device, 5, [B, N, C], Parameters);
        var plain = h.Run((x, p) => Mlp(x, p));
        var oracle = h.Run((x, p) => SbpRegion.Run("oracle", x, 1, null, t => Mlp(t, p), new RegionOptions(RegionMode.Oracle, Rescale: true)));
        AssertSameGradients(plain, oracle, "oracle, rescale, no mask");
    }

    [TestCase(MaskKind.Strided, 0.25, 2, 1)]    // stride 4 over 2 frames: offset 2 is past the end
    [TestCase(MaskKind.Random, 0.1, 4, 2)]      // round(0.4) = 0
    [TestCase(MaskKind.Strided, 0.125, 5, 2)]   // stride 8 over 5 positions, centred offset 4: one kept, not the centre
    public void A_dimension_too_short_for_the_keep_ratio_keeps_the_centre(MaskKind kind, double keep, int size, int expected)
    {
        var masks = new KeepMaskGenerator(new KeepMaskPolicy(kind, keep, Seed: 3));
        var mask = masks.Next(0, 0, size);
        Assert.That(mask.KeptCount, Is.GreaterThanOrEqualTo(1));
        if (size == 5) Assert.That(mask.Kept.ToArray(), Is.EqualTo(new[] { 4 }), "a mask that keeps something is left as drawn");
        else Assert.That(mask.Kept.ToArray(), Is.EqualTo(new[] { expected }), "the centre position");
        // The region trains with it and reports the effective keep ratio.
        var report = RunRegionOver(size, mask);
        Assert.That(report.KeepRatio, Is.EqualTo((double)mask.KeptCount / size));
    }

    RegionReport RunRegionOver(int size, KeepMask mask)
    {
        RegionReport? report = null;
        new RegionHarness(Device, 5, [B, size, C], Parameters).Run((x, p) =>
        {
            var y = SbpRegion.Run("short", x, 1, mask, t => Mlp(t, p));
            report = Tape.Current!.Regions.Single();
            return y;
        });
        return report!;
    }

    [Test]
    public void Mask_scopes_share_a_mask_per_layer_step_or_run()
    {
        KeepMaskGenerator Gen(MaskScope scope) => new(new KeepMaskPolicy(MaskKind.Random, 0.5, Seed: 21) { Scope = scope });
        var layer = Gen(MaskScope.Layer);
        var step = Gen(MaskScope.Step);
        var model = Gen(MaskScope.Model);
        bool Same(KeepMask a, KeepMask b) => a.Equals(b);
        Assert.That(Enumerable.Range(0, 8).Any(l => !Same(layer.Next(0, l, 32), layer.Next(0, 0, 32))), "per layer: layers differ");
        Assert.That(Enumerable.Range(0, 8).All(l => Same(step.Next(3, l, 32), step.Next(3, 0, 32))), "per step: every layer shares the step's mask");
        Assert.That(Enumerable.Range(0, 8).Any(t => !Same(step.Next(t, 0, 32), step.Next(0, 0, 32))), "per step: steps differ");
        Assert.That(Enumerable.Range(0, 8).All(t => Same(model.Next(t, t + 1, 32), model.Next(0, 0, 32))), "per model: one mask for every step and layer");
    }

    [Test]
    public void A_keep_ratio_a_mask_kind_cannot_draw_is_refused_when_the_generator_is_made()
    {
        Assert.That(() => new KeepMaskGenerator(new KeepMaskPolicy(MaskKind.Strided, 0.3)), Throws.ArgumentException.With.Message.Contains("1/s"));
        Assert.That(() => new KeepMaskGenerator(new KeepMaskPolicy(MaskKind.Grid, 0.4)), Throws.ArgumentException.With.Message.Contains("1/s"));
        Assert.That(new KeepMaskGenerator(new KeepMaskPolicy(MaskKind.Grid, 0.75)).Next(0, 0, 4, 4).KeptCount, Is.EqualTo(12));
        Assert.That(new KeepMaskGenerator(new KeepMaskPolicy(MaskKind.Random, 0.3)).Next(0, 0, 10).KeptCount, Is.EqualTo(3));
    }

    [Test]
    public void A_refused_op_is_refused_in_the_forward_pass_in_every_mode()
    {
        // SBP + checkpointing used to run its body untraced and meet the refusal only when backward re-ran it.
        foreach (var mode in new[] { RegionMode.SparseCache, RegionMode.Recompute, RegionMode.Checkpoint })
        {
            using var scope = TensorScope.Begin();
            var x = T(Rand.Uniform(1, B * N * C), B, N, C);
            x.RequiresGrad = true;
            using var tape = Tape.Begin();
            Assert.That(() => SbpRegion.Run("mixing", x, 1, KeepMask.Strided(N, 2, 1), h => Ops.Mean(h, [1], keepDim: true), new RegionOptions(mode)),
                Throws.TypeOf<SbpRegionException>().With.Message.Contains("mixes positions along axis 1"), $"{mode}");
        }
    }

    [Test]
    public void Dropout_on_attention_probabilities_inside_a_region_matches_the_oracle()
    {
        // nn.MultiHeadAttention with attention dropout (the composed path), sparse cache vs oracle with the same masks.
        (float[] X, Dictionary<string, float[]> W) Run(RegionMode mode)
        {
            // A fresh module per run: the same weights and the same dropout stream.
            using var mha = new Sbp.Nn.MultiHeadAttention(C, 2, new RandomSource(8), attnDrop: 0.3f, device: Device);
            using var scope = TensorScope.Begin();
            var x = T(Rand.Uniform(9, B * N * C), B, N, C);
            x.RequiresGrad = true;
            using var tape = Tape.Begin();
            var y = SbpRegion.Run("mha", x, 1, KeepMask.Strided(N, 4, 1), h => mha.Forward(h), new RegionOptions(mode));
            tape.Backward(Ops.Sum(Ops.Mul(y, T(Rand.Uniform(10, B * N * C), B, N, C))));
            return (x.Grad!.ToArray(), mha.NamedParameters().ToDictionary(p => p.Name, p => p.Tensor.Grad!.ToArray()));
        }
        var oracle = Run(RegionMode.Oracle);
        foreach (var mode in new[] { RegionMode.SparseCache, RegionMode.Recompute, RegionMode.Checkpoint })
        {
            var got = Run(mode);
            AssertClose(oracle.X, got.X, $"{mode}: input gradient");
            foreach (var (name, g) in oracle.W) AssertClose(g, got.W[name], $"{mode}: {name}");
        }
    }
}
