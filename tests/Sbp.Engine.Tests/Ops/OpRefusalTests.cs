using Sbp.Autograd;
using Sbp.Engine.Tests.Support;
using Sbp.Stochastic;
using Sbp.Tensors;

namespace Sbp.Engine.Tests.OpTests;

/// <summary>
/// Malformed arguments are refused before any work, with the exception type a caller can catch and
/// a message that names the op, the shapes or values and the fix. Each refusal in full; the tape
/// records nothing (OpErrorTests and the validation sweep cover the common shape errors).
/// </summary>
public class OpRefusalTests : DeviceTest
{
    public sealed record Refusal(string Name, Func<OpRefusalTests, object> Call, Type Exception, string Message)
    {
        public override string ToString() => Name;
    }

    Tensor Z(params int[] shape) => Tensor.Zeros(new Shape(shape), Device);

    /// <summary>An attention mask [1, 2, 2, 3] (two heads, two queries, three keys), row by row.</summary>
    Tensor Mask(params float[] values) => Tensor.FromArray(values, new Shape(1, 2, 2, 3), Device);

    Tensor Scalar(float v) => Tensor.FromArray([v], new Shape([]), Device);

    public static readonly Refusal[] Cases =
    [
        new("attention_without_keys", t => Ops.ScaledDotProductAttention(t.Z(1, 1, 2, 4), t.Z(1, 1, 0, 4), t.Z(1, 1, 0, 4)), typeof(ShapeMismatchException),
            "scaled_dot_product_attention: k [1, 1, 0, 4] has no keys (M = 0); every query needs at least one key."),
        new("attention_without_features", t => Ops.ScaledDotProductAttention(t.Z(1, 1, 2, 0), t.Z(1, 1, 3, 0), t.Z(1, 1, 3, 2)), typeof(ShapeMismatchException),
            "scaled_dot_product_attention: k [1, 1, 3, 0] has D = 0; queries and keys need at least one feature."),
        new("attention_scalar_mask_minus_infinity", t => Ops.ScaledDotProductAttention(t.Z(1, 1, 2, 4), t.Z(1, 1, 3, 4), t.Z(1, 1, 3, 4), mask: t.Scalar(float.NegativeInfinity)), typeof(ArgumentException),
            "scaled_dot_product_attention: the scalar mask is -Infinity: every score would be masked and softmax undefined. Use 0 or a large finite negative value."),
        new("attention_scalar_mask_nan", t => Ops.ScaledDotProductAttention(t.Z(1, 1, 2, 4), t.Z(1, 1, 3, 4), t.Z(1, 1, 3, 4), mask: t.Scalar(float.NaN)), typeof(ArgumentException),
            "scaled_dot_product_attention: the scalar mask is NaN: every score would be masked and softmax undefined. Use 0 or a large finite negative value."),
        new("batch_norm_unknown_mode", t => Ops.BatchNorm(t.Z(2, 3), null, null, null, null, (BatchNormMode)7), typeof(ArgumentOutOfRangeException),
            "batch_norm: unknown mode 7. (Parameter 'mode')"),
        new("broadcast_to_a_smaller_dimension", t => Ops.BroadcastTo(t.Z(2, 3), new Shape(4, 3)), typeof(ShapeMismatchException),
            "broadcast_to: shape [2, 3] cannot be broadcast to [4, 3] (each dimension must be 1 or equal, aligned from the right)."),
        new("sum_to_a_shape_that_does_not_broadcast", t => Ops.SumTo(t.Z(2, 3), new Shape(2)), typeof(ShapeMismatchException),
            "sum_to: shape [2, 3] cannot be summed down to [2] ([2] must broadcast to [2, 3])."),
        new("conv2d_rank_3_input", t => Ops.Conv2d(t.Z(4, 5, 5), t.Z(2, 4, 3, 3)), typeof(ShapeMismatchException),
            "conv2d: the input must be [N, C, H, W] (rank 4), got [4, 5, 5]; add the missing axes with Reshape."),
        new("conv2d_weight_of_other_channels", t => Ops.Conv2d(t.Z(1, 4, 5, 5), t.Z(2, 3, 3, 3)), typeof(ShapeMismatchException),
            "conv2d: weight [2, 3, 3, 3] does not fit input [1, 4, 5, 5] with groups = 1: its second dimension must be C/groups = 4 (the weight layout is [O, C/groups, kH, kW]), got 3."),
        new("conv3d_weight_of_other_channels", t => Ops.Conv3d(t.Z(1, 4, 3, 5, 5), t.Z(2, 3, 1, 3, 3)), typeof(ShapeMismatchException),
            "conv3d: weight [2, 3, 1, 3, 3] does not fit input [1, 4, 3, 5, 5] with groups = 1: its second dimension must be C/groups = 4 (the weight layout is [O, C/groups, kT, kH, kW]), got 3."),
        new("conv2d_empty_kernel", t => Ops.Conv2d(t.Z(1, 4, 5, 5), t.Z(2, 4, 0, 3)), typeof(ShapeMismatchException),
            "conv2d: weight [2, 4, 0, 3] has an empty kernel (0, 3); every kernel size must be >= 1."),
        new("grad_mask_of_another_size", t => Ops.GradMask(t.Z(2, 8), 1, KeepMask.Strided(5, 2, 0)), typeof(ShapeMismatchException),
            "grad_mask: mask over 5 positions does not fit dimension 1 of [2, 8] (size 8)."),
        new("index_add_source_of_another_shape", t => Ops.IndexAdd(t.Z(4, 3), 0, t.Idx(0, 2), t.Z(3, 3)), typeof(ShapeMismatchException),
            "index_add: source [3, 3] must be [2, 3] (x [4, 3] with dimension 0 = 2 indices)."),
        new("layer_norm_over_nothing", t => Ops.LayerNorm(t.Z(2, 0), [0]), typeof(ShapeMismatchException),
            "layer_norm: normalizedShape [0] is empty; there is nothing to normalize over."),
        new("reshape_two_inferred", t => Ops.Reshape(t.Z(2, 6), -1, -1), typeof(ShapeMismatchException),
            "reshape: at most one dimension can be -1, got [-1, -1]."),
        new("reshape_negative", t => Ops.Reshape(t.Z(2, 6), 3, -2), typeof(ShapeMismatchException),
            "reshape: invalid dimension -2 in [3, -2]."),
        new("reshape_cannot_infer", t => Ops.Reshape(t.Z(2, 6), 5, -1), typeof(ShapeMismatchException),
            "reshape: cannot infer -1 in [5, -1] for [2, 6] (12 elements)."),
        new("reshape_cannot_infer_next_to_zero", t => Ops.Reshape(t.Z(2, 6), 0, -1), typeof(ShapeMismatchException),
            "reshape: cannot infer -1 in [0, -1] for [2, 6] (12 elements)."),
        new("reshape_other_size", t => Ops.Reshape(t.Z(2, 6), 5, 2), typeof(ShapeMismatchException),
            "reshape: [2, 6] (12 elements) cannot be reshaped to [5, 2] (10 elements)."),
        new("permute_too_few_axes", t => Ops.Permute(t.Z(2, 3, 4), 1, 0), typeof(ShapeMismatchException),
            "permute: 2 axes given for a tensor of rank 3 ([2, 3, 4])."),
        new("permute_repeated_axis", t => Ops.Permute(t.Z(2, 3, 4), 0, 2, -1), typeof(ArgumentException),
            "permute: [0, 2, -1] repeats an axis; it must be a permutation of 0..2."),
        new("slice_negative_length", t => Ops.Slice(t.Z(2, 3), 1, 1, -1), typeof(ArgumentOutOfRangeException),
            "slice: [1, 0) is outside dimension 1 of [2, 3] (size 3). (Parameter 'start')"),
        new("slice_past_the_end", t => Ops.Slice(t.Z(2, 3), -1, 2, 2), typeof(ArgumentOutOfRangeException),
            "slice: [2, 4) is outside dimension 1 of [2, 3] (size 3). (Parameter 'start')"),
        new("concat_nothing", t => Ops.Concat([], 0), typeof(ArgumentException),
            "concat: needs at least one tensor."),
        new("cross_entropy_unknown_reduction", t => Ops.CrossEntropy(t.Z(2, 3), t.Idx(0, 1), reduction: (Reduction)9), typeof(ArgumentOutOfRangeException),
            "cross_entropy: unknown reduction. (Parameter 'reduction')\nActual value was 9."),
        new("mse_unknown_reduction", t => Ops.MseLoss(t.Z(2, 3), t.Z(2, 3), (Reduction)9), typeof(ArgumentOutOfRangeException),
            "mse_loss: unknown reduction. (Parameter 'reduction')\nActual value was 9."),
        new("bce_unknown_reduction", t => Ops.BinaryCrossEntropyWithLogits(t.Z(2, 3), t.Z(2, 3), reduction: (Reduction)9), typeof(ArgumentOutOfRangeException),
            "binary_cross_entropy_with_logits: unknown reduction. (Parameter 'reduction')\nActual value was 9."),
        new("matmul_scalar", t => Ops.Matmul(t.Scalar(2), t.Z(2, 3)), typeof(ShapeMismatchException),
            "matmul: both operands need at least one dimension, got [] @ [2, 3]; use Mul for scalars."),
        new("matmul_by_scalar", t => Ops.Matmul(t.Z(2, 3), t.Scalar(2)), typeof(ShapeMismatchException),
            "matmul: both operands need at least one dimension, got [2, 3] @ []; use Mul for scalars."),
        new("linear_scalar_input", t => Ops.Linear(t.Scalar(2), t.Z(3, 1)), typeof(ShapeMismatchException),
            "linear: input [] and weight [3, 1] do not fit; the weight must be [out, in] with in = the input's last dimension (none)."),
        new("linear_weight_of_rank_3", t => Ops.Linear(t.Z(2, 4), t.Z(1, 3, 4)), typeof(ShapeMismatchException),
            "linear: input [2, 4] and weight [1, 3, 4] do not fit; the weight must be [out, in] with in = the input's last dimension (4)."),
        new("linear_bias_of_other_size", t => Ops.Linear(t.Z(2, 4), t.Z(3, 4), t.Z(4)), typeof(ShapeMismatchException),
            "linear: bias [4] must be [3] for weight [3, 4]."),
        new("linear_bias_of_rank_2", t => Ops.Linear(t.Z(2, 4), t.Z(3, 4), t.Z(1, 3)), typeof(ShapeMismatchException),
            "linear: bias [1, 3] must be [3] for weight [3, 4]."),
        new("max_pool2d_rank_3_input", t => Ops.MaxPool2d(t.Z(3, 5, 5), [2, 2]), typeof(ShapeMismatchException),
            "max_pool2d: the input must be [N, C, H, W] (rank 4), got [3, 5, 5]."),
        new("max_pool3d_zero_kernel", t => Ops.MaxPool3d(t.Z(1, 1, 3, 5, 5), [1, 0, 2]), typeof(ArgumentException),
            "max_pool3d: kernel (1, 0, 2) must be >= 1 on every axis."),
        new("sum_repeated_axis", t => Ops.Sum(t.Z(2, 3), [1, -1]), typeof(ArgumentException),
            "sum: dimension list [1, -1] repeats an axis."),
        new("max_over_an_empty_axis", t => Ops.Max(t.Z(2, 0), [1]), typeof(ArgumentException),
            "max: cannot reduce over an empty dimension of [2, 0]."),
        new("bias_gelu_scalar_input", t => Ops.BiasGelu(t.Scalar(1), t.Z(1)), typeof(ShapeMismatchException),
            "bias_gelu: bias [1] must be [C] with C = the input's last dimension (none: the input is a scalar), input []."),
        new("roll_without_dims", t => Ops.Roll(t.Z(2, 3), [], []), typeof(ArgumentException),
            "roll: needs one shift per dimension and at least one of each; got shifts [] and dims [] for [2, 3]."),
        new("roll_shift_per_dim", t => Ops.Roll(t.Z(2, 3), [1, 2], [0]), typeof(ArgumentException),
            "roll: needs one shift per dimension and at least one of each; got shifts [1, 2] and dims [0] for [2, 3]."),
        new("window_reverse_without_batch", t => Ops.WindowReverse3d(t.Z(1, 8, 2), (2, 2, 2), 0, 2, 2, 2), typeof(ArgumentOutOfRangeException),
            "window_reverse3d: batch must be positive, got 0. (Parameter 'batch')"),
        new("attention_k_of_other_features", t => Ops.ScaledDotProductAttention(t.Z(1, 1, 2, 4), t.Z(1, 1, 3, 5), t.Z(1, 1, 3, 4)), typeof(ShapeMismatchException),
            "scaled_dot_product_attention: k [1, 1, 3, 5] must be [B=1, H=1, M, D=4] to match q [1, 1, 2, 4]."),
        new("attention_v_of_other_keys", t => Ops.ScaledDotProductAttention(t.Z(1, 1, 2, 4), t.Z(1, 1, 3, 4), t.Z(1, 1, 2, 4)), typeof(ShapeMismatchException),
            "scaled_dot_product_attention: v [1, 1, 2, 4] must be [B=1, H=1, M=3, Dv] to match q [1, 1, 2, 4] and k [1, 1, 3, 4]."),
        new("attention_mask_with_nan", t => Ops.ScaledDotProductAttention(t.Z(1, 2, 2, 4), t.Z(1, 2, 3, 4), t.Z(1, 2, 3, 4), mask: t.Mask(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, float.NaN, 0)), typeof(ArgumentException),
            "scaled_dot_product_attention: mask[1, 2, 2, 3] row [0, 1, 1, :] contains NaN; masks must hold 0 and -inf (or large negative) values."),
        new("attention_mask_row_without_keys", t => Ops.ScaledDotProductAttention(t.Z(1, 2, 2, 4), t.Z(1, 2, 3, 4), t.Z(1, 2, 3, 4), mask: t.Mask(0, 0, 0, 0, 0, 0, 0, 0, 0, float.NegativeInfinity, float.NegativeInfinity, float.NegativeInfinity)), typeof(ArgumentException),
            "scaled_dot_product_attention: mask[1, 2, 2, 3] row [0, 1, 1, :] is -inf for every key, so its query row(s) would attend to nothing and softmax would be NaN. Use a large finite negative value instead of -inf (Swin uses -100), or make sure every query keeps at least one key."),
        new("batch_norm_eps_zero", t => Ops.BatchNorm(t.Z(2, 3), null, null, null, null, BatchNormMode.Train, eps: 0f), typeof(ArgumentOutOfRangeException),
            "batch_norm: eps must be > 0, got 0. (Parameter 'eps')"),
        new("batch_norm_eval_with_one_running_statistic", t => Ops.BatchNorm(t.Z(2, 3), null, null, t.Z(3), null, BatchNormMode.Eval), typeof(ArgumentException),
            "batch_norm: mode Eval normalizes with the running statistics; pass runningMean and runningVar ([3])."),
        new("conv3d_two_strides", t => Ops.Conv3d(t.Z(1, 4, 3, 5, 5), t.Z(2, 4, 1, 3, 3), stride: [1, 2]), typeof(ArgumentException),
            "conv3d: stride [1, 2] must have 3 values (t, h, w) or one for every axis."),
        new("conv2d_three_strides", t => Ops.Conv2d(t.Z(1, 4, 5, 5), t.Z(2, 4, 3, 3), stride: [1, 2, 2]), typeof(ArgumentException),
            "conv2d: stride [1, 2, 2] must have 2 values (h, w) or one for every axis."),
        new("conv3d_empty_kernel", t => Ops.Conv3d(t.Z(1, 4, 3, 5, 5), t.Z(2, 4, 1, 0, 3)), typeof(ShapeMismatchException),
            "conv3d: weight [2, 4, 1, 0, 3] has an empty kernel (1, 0, 3); every kernel size must be >= 1."),
        new("layer_norm_not_trailing", t => Ops.LayerNorm(t.Z(2, 3), [4]), typeof(ShapeMismatchException),
            "layer_norm: normalizedShape [4] must be the trailing dims of the input [2, 3] (for example [3] to normalize over the last axis)."),
        new("layer_norm_of_a_scalar", t => Ops.LayerNorm(t.Scalar(1), [1]), typeof(ShapeMismatchException),
            "layer_norm: normalizedShape [1] must be the trailing dims of the input [] (for example [0] to normalize over the last axis)."),
        new("max_over_axes_one_of_them_empty", t => Ops.Max(t.Z(2, 0), [0, 1]), typeof(ArgumentException),
            "max: cannot reduce over an empty dimension of [2, 0]."),
        new("bias_gelu_tanh_scalar_input", t => Ops.BiasGelu(t.Scalar(1), t.Z(1), tanhApproximation: true), typeof(ShapeMismatchException),
            "bias_gelu_tanh: bias [1] must be [C] with C = the input's last dimension (none: the input is a scalar), input []."),
        new("bias_gelu_bias_of_other_size", t => Ops.BiasGelu(t.Z(2, 3), t.Z(4)), typeof(ShapeMismatchException),
            "bias_gelu: bias [4] must be [C] with C = the input's last dimension (3), input [2, 3]."),
        new("bias_gelu_integer_bias", t => Ops.BiasGelu(t.Z(2, 3), t.Idx(1, 2, 3)), typeof(ArgumentException),
            "bias_gelu: the second input must be Float32, got Int32 [3]."),
        new("linear_rows_negative_start", t => Ops.LinearRows(t.Z(2, 4), t.Z(6, 4), null, -1, 2), typeof(ArgumentOutOfRangeException),
            "linear_rows: rows [-1, 1) are outside the weight [6, 4] (rows 0..6). (Parameter 'start')"),
        new("linear_rows_no_rows", t => Ops.LinearRows(t.Z(2, 4), t.Z(6, 4), null, 2, 0), typeof(ArgumentOutOfRangeException),
            "linear_rows: rows [2, 2) are outside the weight [6, 4] (rows 0..6). (Parameter 'start')"),
        new("linear_rows_past_the_end", t => Ops.LinearRows(t.Z(2, 4), t.Z(6, 4), null, 4, 3), typeof(ArgumentOutOfRangeException),
            "linear_rows: rows [4, 7) are outside the weight [6, 4] (rows 0..6). (Parameter 'start')"),
        new("window_partition_zero_height", t => Ops.WindowPartition3d(t.Z(1, 2, 2, 2, 3), (2, 0, 2)), typeof(ArgumentOutOfRangeException),
            "window_partition3d: window (2, 0, 2) must be positive in every dimension. (Parameter 'window')"),
        new("window_partition_zero_width", t => Ops.WindowPartition3d(t.Z(1, 2, 2, 2, 3), (2, 2, 0)), typeof(ArgumentOutOfRangeException),
            "window_partition3d: window (2, 2, 0) must be positive in every dimension. (Parameter 'window')"),
        new("window_partition_not_multiples", t => Ops.WindowPartition3d(t.Z(1, 3, 4, 5, 2), (2, 2, 2)), typeof(ShapeMismatchException),
            "window_partition3d: input [1, 3, 4, 5, 2]: T=3, H=4, W=5 must be multiples of the window (2, 2, 2). Pad first, e.g. Ops.Pad(x, [0, 0, 0, 1, 0, 0, 0, 1]) on [B, T, H, W, C]."),
        new("window_partition_pads_to_the_next_multiple", t => Ops.WindowPartition3d(t.Z(1, 4, 4, 4, 2), (3, 3, 3)), typeof(ShapeMismatchException),
            "window_partition3d: input [1, 4, 4, 4, 2]: T=4, H=4, W=4 must be multiples of the window (3, 3, 3). Pad first, e.g. Ops.Pad(x, [0, 0, 0, 2, 0, 2, 0, 2]) on [B, T, H, W, C]."),
        new("window_partition_width_not_a_multiple", t => Ops.WindowPartition3d(t.Z(1, 2, 2, 3, 2), (2, 2, 2)), typeof(ShapeMismatchException),
            "window_partition3d: input [1, 2, 2, 3, 2]: T=2, H=2, W=3 must be multiples of the window (2, 2, 2). Pad first, e.g. Ops.Pad(x, [0, 0, 0, 1, 0, 0, 0, 0]) on [B, T, H, W, C]."),
        new("window_reverse_not_multiples", t => Ops.WindowReverse3d(t.Z(2, 8, 3), (2, 2, 2), 1, 4, 3, 2), typeof(ShapeMismatchException),
            "window_reverse3d: target [B=1, T=4, H=3, W=2]: T=4, H=3, W=2 must be multiples of the window (2, 2, 2). Pad first, e.g. Ops.Pad(x, [0, 0, 0, 0, 0, 1, 0, 0]) on [B, T, H, W, C]."),
        new("dropout_without_random_source", t => Ops.Dropout(t.Z(2, 3), 0.5f, null!), typeof(ArgumentNullException),
            "Value cannot be null. (Parameter 'rng')"),
        new("drop_path_without_random_source", t => Ops.DropPath(t.Z(2, 3), 0.5f, null!), typeof(ArgumentNullException),
            "Value cannot be null. (Parameter 'rng')"),
        new("layer_norm_without_shape", t => Ops.LayerNorm(t.Z(2, 3), null!), typeof(ArgumentNullException),
            "Value cannot be null. (Parameter 'normalizedShape')"),
        new("max_pool2d_without_kernel", t => Ops.MaxPool2d(t.Z(1, 1, 4, 4), null!), typeof(ArgumentNullException),
            "Value cannot be null. (Parameter 'kernel')"),
        new("roll_without_shifts", t => Ops.Roll(t.Z(2, 3), null!, [0]), typeof(ArgumentNullException),
            "Value cannot be null. (Parameter 'shifts')"),
        new("roll_without_dims_array", t => Ops.Roll(t.Z(2, 3), [1], null!), typeof(ArgumentNullException),
            "Value cannot be null. (Parameter 'dims')"),
        new("pad_without_pads", t => Ops.Pad(t.Z(2, 3), null!), typeof(ArgumentNullException),
            "Value cannot be null. (Parameter 'pads')"),
    ];

    [TestCaseSource(nameof(Cases))]
    public void IsRefusedBeforeAnyWork(Refusal c)
    {
        using var tape = Tape.Begin();
        var e = Assert.Throws(c.Exception, () => c.Call(this));
        Assert.That(e!.Message.ReplaceLineEndings("\n"), Is.EqualTo(c.Message));
        Assert.That(tape.Nodes, Is.Empty);
    }
}
