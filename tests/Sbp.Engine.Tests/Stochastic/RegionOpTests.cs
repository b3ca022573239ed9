using Sbp.Engine.Tests.Support;
using Sbp.Rng;
using Sbp.Stochastic;
using Sbp.Tensors;
using static Sbp.Engine.Tests.Stochastic.RegionHarness;

namespace Sbp.Engine.Tests.Stochastic;

/// <summary>
/// docs/SBP.md invariants on single ops inside one region: every caching mode gives the oracle's
/// gradients (invariant 3), keep = 1 gives plain backprop (1), the forward never changes (2).
/// </summary>
public class RegionOpTests : DeviceTest
{
    /// <summary>One op (or a short chain) inside a region: the input shape, the region dimension, parameters, the body.</summary>
    public sealed record OpCase(string Name, int[] XShape, int Dim, (string Name, int[] Shape)[] Parameters,
        Func<Tensor, IReadOnlyDictionary<string, Tensor>, Tensor> Body, int Stride = 2, int Offset = 1, int[]? Kept = null)
    {
        public Dictionary<string, float[]> Constants { get; init; } = [];
        public override string ToString() => Name;
    }

    static readonly OpCase[] Cases =
    [
        new("linear", [2, 6, 5], 1, [("w", [4, 5]), ("b", [4])], (x, p) => Ops.Linear(x, p["w"], p["b"])),
        new("layer_norm", [2, 6, 5], 1, [("g", [5]), ("b", [5])], (x, p) => Ops.LayerNorm(x, [5], p["g"], p["b"])),
        new("gelu_mul_add_exp", [2, 6, 5], 1, [("s", [5]), ("t", [5])], (x, p) => Ops.Exp(Ops.Add(Ops.Mul(Ops.Gelu(x), p["s"]), p["t"]))),
        new("bias_gelu_mlp", [2, 6, 5], 1, [("w1", [7, 5]), ("b1", [7]), ("w2", [4, 7])], (x, p) =>
            Ops.Linear(Ops.BiasGelu(Ops.Linear(x, p["w1"]), p["b1"]), p["w2"])),
        new("permute_of_a_unit_axis_view", [2, 6, 5], 1, [("w", [4, 5])], (x, p) =>
            Ops.Linear(Ops.Reshape(Ops.Permute(Ops.Reshape(x, x.Shape[0], x.Shape[1], 1, 5), 0, 2, 1, 3), x.Shape[0], x.Shape[1], 5), p["w"])),
        new("position_embedding", [2, 6, 5], 1, [("pos", [1, 6, 5]), ("w", [3, 5])], (x, p) => Ops.Linear(Ops.Add(x, p["pos"]), p["w"])),
        new("softmax_channels", [2, 6, 5], 1, [("w", [4, 5])], (x, p) => Ops.Softmax(Ops.Linear(x, p["w"]), -1)),
        new("dropout", [2, 6, 5], 1, [("w", [4, 5])], (x, p) => Ops.Dropout(Ops.Linear(x, p["w"]), 0.3f, new RandomSource(11))),
        new("drop_path", [4, 6, 5], 1, [("w", [4, 5])], (x, p) => Ops.DropPath(Ops.Linear(x, p["w"]), 0.5f, new RandomSource(12))),
        new("reshape_permute", [2, 6, 4], 1, [("s", [2, 1, 2])], (x, p) =>
        {
            // Bodies derive sizes from their input (recompute re-runs them on the kept slice).
            var t = Ops.Permute(Ops.Reshape(x, x.Shape[0], x.Shape[1], 2, 2), 0, 2, 1, 3);
            return Ops.Reshape(Ops.Permute(Ops.Mul(t, p["s"]), 0, 2, 1, 3), x.Shape[0], x.Shape[1], 4);
        }),
        new("sum_channels", [2, 6, 5], 1, [("w", [4, 5])], (x, p) => Ops.Mul(Ops.Sum(Ops.Linear(x, p["w"]), [-1], keepDim: true), Ops.Linear(x, p["w"]))),
        new("sum_over_an_earlier_axis", [2, 3, 6, 5], 2, [("w", [4, 5])], (x, p) =>
            // The region's axis moves from 2 to 1 when axis 1 is summed away, and back with the reshape.
            Ops.Reshape(Ops.Linear(Ops.Sum(x, [1]), p["w"]), x.Shape[0], 1, x.Shape[2], 4)),
        new("per_sample_scale", [6, 3, 5], 0, [("s", [6, 1, 5]), ("w", [4, 5])], (x, p) => Ops.Linear(Ops.Mul(x, p["s"]), p["w"])),
        new("roll_by_one_and_back", [2, 6, 5], 1, [("w", [5, 5])], (x, p) => Ops.Roll(Ops.Linear(Ops.Roll(x, [1], [1]), p["w"]), [-1], [1])),
        new("roll_by_one_and_back_on_the_first_axis", [6, 3, 5], 0, [("w", [5, 5])], (x, p) => Ops.Roll(Ops.Linear(Ops.Roll(x, [1], [0]), p["w"]), [-1], [0])),
        new("sum_over_an_axis_two_before_the_region", [2, 3, 4, 6], 3, [("s", [4, 6])], (x, p) =>
            Ops.Reshape(Ops.Mul(Ops.Sum(x, [1]), p["s"]), x.Shape[0], 1, 4, x.Shape[3])),
        new("batched_matmul_on_the_heads_axis", [2, 4, 3, 5], 1, [("w", [5, 3])], (x, p) => Ops.Matmul(x, p["w"])),
        // Rolling by 3 with kept [0, 1, 5]: only the rotation the region measures (not its opposite) lands on the request.
        new("roll_with_an_irregular_mask", [2, 8, 4], 1, [("w", [4, 4])], (x, p) => Ops.Linear(Ops.Roll(x, [3], [1]), p["w"]), Kept: [0, 1, 5]),
        // A slice from 0 shorter than the axis is not the identity: the last positions are gone, and the
        // pad's positions continue the kept pattern (1, 3, then 5), so the output keeps what was requested.
        new("crop_the_end_and_pad_it_back", [2, 6, 4], 1, [("w", [4, 4])], (x, p) =>
            Ops.Linear(Ops.Pad(Ops.Slice(Ops.Gelu(x), 1, 0, x.Shape[1] - 2), [0, 0, 0, 2]), p["w"])),
        new("matmul_weight", [2, 6, 5], 1, [("w", [5, 3])], (x, p) => Ops.Matmul(x, p["w"])),
        new("batched_matmul", [2, 6, 5], 1, [("w", [2, 5, 3])], (x, p) => Ops.Matmul(x, p["w"])),
        new("batch_axis_region", [6, 3, 5], 0, [("w", [4, 5]), ("g", [4])], (x, p) => Ops.LayerNorm(Ops.Linear(x, p["w"]), [4], p["g"])),
        new("conv2d_per_frame_frozen_bn_pool", [2, 4, 3, 5, 5], 1, [("w", [4, 3, 3, 3]), ("b", [4]), ("g", [4]), ("beta", [4])], (x, p) =>
        {
            int b = x.Shape[0], t = x.Shape[1];
            var frames = Ops.Reshape(x, b * t, 3, 5, 5);
            var h = Ops.Conv2d(frames, p["w"], p["b"], padding: [1, 1]);
            h = Ops.Relu(Ops.BatchNorm(h, p["g"], p["beta"], p["rm"], p["rv"], BatchNormMode.Frozen));
            h = Ops.MaxPool2d(h, [2, 2]);
            return Ops.Reshape(h, b, t, 4, 2, 2);
        }) { Constants = { ["rm"] = [0.1f, -0.2f, 0.3f, 0f], ["rv"] = [1.5f, 0.7f, 1f, 2f] } },
        new("conv3d_kernel1_in_time", [2, 3, 6, 4, 4], 2, [("w", [4, 3, 1, 3, 3])], (x, p) => Ops.Conv3d(x, p["w"], padding: [0, 1, 1])),
        new("roll_along_dimension", [2, 6, 5], 1, [("w", [4, 5])], (x, p) => Ops.Linear(Ops.Roll(x, [2], [1]), p["w"])),
        new("pad_slice_concat", [2, 6, 5], 1, [("w", [5, 9])], (x, p) =>
        {
            var padded = Ops.Pad(Ops.Gelu(x), [1, 2]);
            return Ops.Linear(Ops.Concat([Ops.Slice(padded, -1, 2, 4), x], -1), p["w"]);
        }),
        new("attention_query_rows_with_bias_table", [2, 6, 8], 1, [("wq", [8, 8]), ("wk", [8, 8]), ("wv", [8, 8]), ("table", [11, 2])], (x, p) =>
        {
            Tensor Heads(Tensor t) => Ops.Permute(Ops.Reshape(t, 2, 6, 2, 4), 0, 2, 1, 3);
            var rel = Enumerable.Range(0, 36).Select(i => i / 6 - i % 6 + 5).ToArray();
            var bias = Ops.Permute(Ops.Reshape(Ops.IndexSelect(p["table"], 0, Tensor.FromArray(rel, new Shape(36), x.Device)), 6, 6, 2), 2, 0, 1);
            var a = Ops.ScaledDotProductAttention(Heads(Ops.Linear(x, p["wq"])), Heads(Ops.Linear(x, p["wk"])), Heads(Ops.Linear(x, p["wv"])), bias);
            return Ops.Reshape(Ops.Permute(a, 0, 2, 1, 3), 2, 6, 8);
        }),
        new("attention_per_frame", [6, 4, 6], 0, [("wq", [6, 6]), ("wk", [6, 6]), ("wv", [6, 6])], (x, p) =>
        {
            int f = x.Shape[0];
            Tensor Heads(Tensor t) => Ops.Permute(Ops.Reshape(t, f, 4, 2, 3), 0, 2, 1, 3);
            var a = Ops.ScaledDotProductAttention(Heads(Ops.Linear(x, p["wq"])), Heads(Ops.Linear(x, p["wk"])), Heads(Ops.Linear(x, p["wv"])));
            return Ops.Reshape(Ops.Permute(a, 0, 2, 1, 3), f, 4, 6);
        }),
        // Learned attention biases that carry the region's positions (frames, query rows) or broadcast over them.
        new("attention_per_frame_with_a_bias_per_frame", [6, 4, 6], 0, [("wq", [6, 6]), ("wk", [6, 6]), ("wv", [6, 6]), ("bias", [6, 2, 4, 4])], (x, p) =>
            PerFrameAttention(x, p, p["bias"])),
        new("attention_per_frame_with_a_shared_bias", [6, 4, 6], 0, [("wq", [6, 6]), ("wk", [6, 6]), ("wv", [6, 6]), ("bias", [2, 4, 4])], (x, p) =>
            PerFrameAttention(x, p, p["bias"])),
        new("attention_query_rows_with_a_row_bias", [2, 6, 8], 1, [("wq", [8, 8]), ("wk", [8, 8]), ("wv", [8, 8]), ("bias", [6, 6])], (x, p) =>
            QueryRowAttention(x, p, p["bias"])),
        new("attention_query_rows_with_a_key_bias", [2, 6, 8], 1, [("wq", [8, 8]), ("wk", [8, 8]), ("wv", [8, 8]), ("bias", [1, 1, 6])], (x, p) =>
            QueryRowAttention(x, p, p["bias"])),
        // Ops that resize the region's dimension (review of 2026-12): exact rules instead of refusals.
        new("pad_and_crop_along_dimension", [2, 6, 5], 1, [("w", [4, 5])], (x, p) =>
        {
            // Pad 1 before and 2 after along the region axis (padded positions continue the kept pattern), mix nothing, crop back.
            var padded = Ops.Gelu(Ops.Pad(Ops.Linear(Ops.Gelu(x), p["w"]), [0, 0, 1, 2]));
            return Ops.Slice(padded, 1, 1, x.Shape[1]);
        }),
        new("slice_that_keeps_every_position", [2, 6, 5], 1, [("w", [4, 5])], (x, p) => Ops.Linear(Ops.Slice(Ops.Gelu(x), 1, 0, x.Shape[1]), p["w"])),
        new("concat_a_learned_token_then_crop", [2, 6, 4], 1, [("tok", [2, 1, 4]), ("wq", [4, 4]), ("wk", [4, 4]), ("wv", [4, 4])], (x, p) =>
        {
            // A token joins the sequence (it carries no region position), attention mixes over all, the token is cropped again.
            var seq = Ops.Concat([p["tok"], x], 1);
            int b = seq.Shape[0], n = seq.Shape[1];
            Tensor Heads(Tensor t) => Ops.Reshape(t, b, 1, n, 4);
            var a = Ops.ScaledDotProductAttention(Heads(Ops.Linear(seq, p["wq"])), Heads(Ops.Linear(seq, p["wk"])), Heads(Ops.Linear(seq, p["wv"])));
            return Ops.Slice(Ops.Reshape(a, b, n, 4), 1, 1, n - 1);
        }),
        new("net_roll_by_one_is_remapped", [2, 6, 5], 1, [("w", [4, 5])], (x, p) => Ops.Linear(Ops.Roll(Ops.Gelu(x), [1], [1]), p["w"])),
        new("net_roll_with_windows", [1, 8, 2, 2, 4], 1, [("wq", [4, 4]), ("wk", [4, 4]), ("wv", [4, 4])], (x, p) =>
        {
            // A Swin-like body that forgets to roll back: its output is rolled by -2 frames along the region axis.
            var windows = Ops.WindowPartition3d(Ops.Roll(x, [-2], [1]), (4, 2, 2));
            int g = windows.Shape[0];
            Tensor Heads(Tensor t) => Ops.Reshape(t, g, 1, 16, 4);
            var a = Ops.ScaledDotProductAttention(Heads(Ops.Linear(windows, p["wq"])), Heads(Ops.Linear(windows, p["wk"])), Heads(Ops.Linear(windows, p["wv"])));
            return Ops.WindowReverse3d(Ops.Reshape(a, g, 16, 4), (4, 2, 2), 1, 8, 2, 2);
        }, Stride: 4, Offset: 1),
        new("attention_from_matmuls_with_dropout", [2, 6, 8], 1, [("wq", [8, 8]), ("wk", [8, 8]), ("wv", [8, 8])], (x, p) =>
        {
            // nn.MultiHeadAttention's composed path: scores from matmuls, softmax, dropout on the probabilities, matmul with v.
            Tensor Heads(Tensor t) => Ops.Permute(Ops.Reshape(t, x.Shape[0], x.Shape[1], 2, 4), 0, 2, 1, 3);
            var q = Heads(Ops.Linear(x, p["wq"]));
            var scores = Ops.Mul(Ops.Matmul(q, Ops.Transpose(Heads(Ops.Linear(x, p["wk"])), -2, -1)), 0.5f);
            var probs = Ops.Dropout(Ops.Softmax(scores, -1), 0.25f, new RandomSource(13));
            var a = Ops.Matmul(probs, Heads(Ops.Linear(x, p["wv"])));
            return Ops.Reshape(Ops.Permute(a, 0, 2, 1, 3), x.Shape[0], x.Shape[1], 8);
        }),
        new("shifted_window_attention", [1, 4, 4, 4, 4], 1, [("wq", [4, 4]), ("wk", [4, 4]), ("wv", [4, 4])], (x, p) =>
        {
            // Video Swin: roll by half a window on T, H, W, partition into (2, 2, 2) windows, attend, reverse, roll back.
            var rolled = Ops.Roll(x, [-1, -1, -1], [1, 2, 3]);
            var windows = Ops.WindowPartition3d(rolled, (2, 2, 2));
            Tensor Heads(Tensor t) => Ops.Permute(Ops.Reshape(t, 8, 8, 2, 2), 0, 2, 1, 3);
            var a = Ops.ScaledDotProductAttention(Heads(Ops.Linear(windows, p["wq"])), Heads(Ops.Linear(windows, p["wk"])), Heads(Ops.Linear(windows, p["wv"])));
            var merged = Ops.WindowReverse3d(Ops.Reshape(Ops.Permute(a, 0, 2, 1, 3), 8, 8, 4), (2, 2, 2), 1, 4, 4, 4);
            return Ops.Roll(merged, [1, 1, 1], [1, 2, 3]);
        }),
    ];

    /// <summary>Attention within each frame (the region on the frames, axis 0): x [F, 4, 6], 2 heads.</summary>
    static Tensor PerFrameAttention(Tensor x, IReadOnlyDictionary<string, Tensor> p, Tensor? bias)
    {
        int f = x.Shape[0];
        Tensor Heads(Tensor t) => Ops.Permute(Ops.Reshape(t, f, 4, 2, 3), 0, 2, 1, 3);
        var a = Ops.ScaledDotProductAttention(Heads(Ops.Linear(x, p["wq"])), Heads(Ops.Linear(x, p["wk"])), Heads(Ops.Linear(x, p["wv"])), bias);
        return Ops.Reshape(Ops.Permute(a, 0, 2, 1, 3), f, 4, 6);
    }

    /// <summary>Attention over the sequence (the region on the query rows, axis 1): x [2, 6, 8], 2 heads.</summary>
    static Tensor QueryRowAttention(Tensor x, IReadOnlyDictionary<string, Tensor> p, Tensor? bias)
    {
        Tensor Heads(Tensor t) => Ops.Permute(Ops.Reshape(t, 2, 6, 2, 4), 0, 2, 1, 3);
        var a = Ops.ScaledDotProductAttention(Heads(Ops.Linear(x, p["wq"])), Heads(Ops.Linear(x, p["wk"])), Heads(Ops.Linear(x, p["wv"])), bias);
        return Ops.Reshape(Ops.Permute(a, 0, 2, 1, 3), 2, 6, 8);
    }

    static KeepMask MaskFor(OpCase c) =>
        c.Kept is null ? KeepMask.Strided(c.XShape[c.Dim], c.Stride, c.Offset) : KeepMask.FromIndices(c.XShape[c.Dim], c.Kept);

    RegionHarness Harness(OpCase c)
    {
        var h = new RegionHarness(Device, 5, c.XShape, c.Parameters);
        foreach (var (k, v) in c.Constants) h.Constants[k] = v;
        return h;
    }

    static Result RunCase(RegionHarness h, OpCase c, RunMode mode, KeepMask? mask, bool rescale = false) =>
        h.Run((x, p) => Region(mode, c.Name, x, c.Dim, mask, t => c.Body(t, p), rescale));

    [TestCaseSource(nameof(Cases))]
    public void EveryModeGivesTheOracleGradients(OpCase c)
    {
        var h = Harness(c);
        var mask = MaskFor(c);
        var oracle = RunCase(h, c, RunMode.Oracle, mask);
        foreach (var mode in new[] { RunMode.SparseCache, RunMode.Recompute, RunMode.Checkpoint })
            AssertSameGradients(oracle, RunCase(h, c, mode, mask), $"{c.Name} {mode}");
    }

    [TestCaseSource(nameof(Cases))]
    public void KeepOneIsPlainBackprop(OpCase c)
    {
        var h = Harness(c);
        var plain = RunCase(h, c, RunMode.Plain, null);
        var all = KeepMask.All(c.XShape[c.Dim]);
        var sparse = RunCase(h, c, RunMode.SparseCache, all);
        Assert.That(sparse.XGrad, Is.EqualTo(plain.XGrad), "keep 1 in sparse-cache mode must be bit-identical to plain backprop");
        foreach (var (name, g) in plain.Grads) Assert.That(sparse.Grads[name], Is.EqualTo(g), name);
        Assert.That(sparse.SavedBytes, Is.EqualTo(plain.SavedBytes));
        AssertSameGradients(plain, RunCase(h, c, RunMode.Recompute, all), $"{c.Name} recompute keep 1");
    }

    [Test]
    public void RescaleMultipliesTheGradientByOneOverKeep()
    {
        var c = Cases.Single(x => x.Name == "layer_norm");
        var h = Harness(c);
        var mask = MaskFor(c);
        var oracle = RunCase(h, c, RunMode.Oracle, mask, rescale: true);
        var plainOracle = RunCase(h, c, RunMode.Oracle, mask);
        Assert.That(oracle.Grads["g"][0], Is.EqualTo(2 * plainOracle.Grads["g"][0]).Within(1e-5));
        foreach (var mode in new[] { RunMode.SparseCache, RunMode.Recompute, RunMode.Checkpoint })
            AssertSameGradients(oracle, RunCase(h, c, mode, mask, rescale: true), $"rescaled {mode}");
    }
}
