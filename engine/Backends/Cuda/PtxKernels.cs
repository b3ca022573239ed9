using static Sbp.Backends.Cuda.Kernel;

namespace Sbp.Backends.Cuda;

/// <summary>Every kernel of kernels/*.ptx, by module, with its parameters (checked against the PTX when the module loads).</summary>
internal static class PtxKernels
{
    /// <summary>Bytes of the by-value shape metadata of the strided kernels (<c>.param .align 4 .b8 p_meta[256]</c>): 64 Int32s.</summary>
    public const int MetaBytes = 256;

    /// <summary>Int32 shape metadata as the <see cref="MetaBytes"/>-byte parameter value (zero-padded); <paramref name="op"/> names the
    /// op in the error when the values do not fit.</summary>
    public static byte[] MetaOf(string op, params int[] values)
    {
        if (values.Length * sizeof(int) > MetaBytes)
            throw new NotSupportedException($"CudaBackend.{op}: the shape metadata needs {values.Length} Int32s but a launch carries {MetaBytes / sizeof(int)}; " +
                "the tensor has too many axes that cannot be merged (reshape it to fewer axes).");
        var bytes = new byte[MetaBytes];
        System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()).CopyTo(bytes);
        return bytes;
    }

    // kernels/attention.ptx
    public static readonly Kernel AttentionSoftmaxF32 = new("attention_softmax_f32", U64("s"), U64("bias"), U64("mask"), U64("p"), U64("p16"), U32("rows"), U32("cols"),
        U32("bias_inner"), U32("mask_div"), U32("mask_groups"), U32("mask_inner"), U32("type"));

    // kernels/bce.ptx
    public static readonly Kernel BceF32 = new("bce_f32", U64("x"), U64("t"), U64("pw"), U64("loss"), U32("n"), U32("pwn"));
    public static readonly Kernel BceBwdF32 = new("bce_bwd_f32", U64("x"), U64("t"), U64("pw"), U64("g"), U64("dx"), U64("dt"), U32("n"), U32("pwn"), U32("gpe"));

    // kernels/dropout.ptx
    public static readonly Kernel BernoulliMaskF32 = new("bernoulli_mask_f32", U64("mask"), U32("n"), U64("key"), U64("offset"), F32("threshold"), F32("scale"));
    public static readonly Kernel DropoutF32 = new("dropout_f32", U64("x"), U64("y"), U64("mask"), U32("n"), U64("key"), U64("offset"), F32("threshold"), F32("scale"));

    // kernels/elementwise.ptx
    public static readonly Kernel AddF32 = new("add_f32", U64("a"), U64("b"), U64("y"), U32("n"));
    public static readonly Kernel MulF32 = new("mul_f32", U64("a"), U64("b"), U64("y"), U32("n"));
    public static readonly Kernel ScaleF32 = new("scale_f32", U64("x"), U64("y"), U32("n"), F32("alpha"));
    public static readonly Kernel ReluF32 = new("relu_f32", U64("x"), U64("y"), U32("n"));
    public static readonly Kernel ReluBwdF32 = new("relu_bwd_f32", U64("x"), U64("dy"), U64("dx"), U32("n"));
    public static readonly Kernel GeluTanhF32 = new("gelu_tanh_f32", U64("x"), U64("y"), U32("n"));
    public static readonly Kernel GeluTanhBwdF32 = new("gelu_tanh_bwd_f32", U64("x"), U64("dy"), U64("dx"), U32("n"));
    public static readonly Kernel GeluErfF32 = new("gelu_erf_f32", U64("x"), U64("y"), U32("n"));
    public static readonly Kernel GeluErfBwdF32 = new("gelu_erf_bwd_f32", U64("x"), U64("dy"), U64("dx"), U32("n"));

    // kernels/half.ptx (type: 0 bfloat16, 1 float16; op: 0 ReLU, 1 GELU erf, 2 GELU tanh)
    public static readonly Kernel BiasActB16 = new("bias_act_b16", U64("x"), U64("bias"), U64("y"), U32("n"), U32("cols"), U32("type"), U32("op"));
    public static readonly Kernel BiasActBwdB16 = new("bias_act_bwd_b16", U64("x"), U64("bias"), U64("dy"), U64("dx"), U32("n"), U32("cols"), U32("type"), U32("op"));
    public static readonly Kernel GatherB16 = new("gather_b16", U64("x"), U64("idx"), U64("y"), U32("outer"), U32("nsrc"), U32("nidx"), U32("inner"));
    public static readonly Kernel BinaryB16 = new("binary_b16", U64("a"), U64("b"), U64("y"), U32("n"), U32("b_div"), U32("b_mod"), U32("a_type"), U32("b_type"), U32("op"));

    // kernels/layernorm.ptx
    public static readonly Kernel LayerNormF32 = new("layer_norm_f32", U64("x"), U64("w"), U64("b"), U64("y"), U64("mean"), U64("rstd"), U32("rows"), U32("cols"), F32("eps"), U32("x_type"), U32("y_type"));
    public static readonly Kernel LayerNormBwdF32 = new("layer_norm_bwd_f32", U64("dy"), U64("x"), U64("w"), U64("mean"), U64("rstd"), U64("dx"), U64("dw_part"), U64("db_part"), U32("rows"), U32("cols"), U32("x_type"));
    public static readonly Kernel LayerNormBwdParamsF32 = new("layer_norm_bwd_params_f32", U64("dw_part"), U64("db_part"), U64("dw"), U64("db"), U32("parts"), U32("cols"));

    // kernels/loss.ptx
    public static readonly Kernel CrossEntropyF32 = new("cross_entropy_f32", U64("z"), U64("y"), U64("w"), U64("loss"), U64("lse"), U32("rows"), U32("classes"), F32("eps"), U32("z_type"));
    public static readonly Kernel CrossEntropyBwdF32 = new("cross_entropy_bwd_f32", U64("z"), U64("y"), U64("w"), U64("lse"), U64("g"), U64("dz"), U32("rows"), U32("classes"), F32("eps"), U32("g_per_row"), U32("z_type"));

    // kernels/optim.ptx
    public static readonly Kernel SgdF32 = new("sgd_f32", U64("p"), U64("g"), U64("buf"), U32("n"), F32("lr"), F32("momentum"), F32("dampening"), F32("weight_decay"), U32("nesterov"), U32("first_step"));
    public static readonly Kernel AdamwF32 = new("adamw_f32", U64("p"), U64("g"), U64("m"), U64("v"), U32("n"), F32("decay"), F32("beta1"), F32("beta2"), F32("step_size"), F32("bc2_sqrt"), F32("eps"));
    public static readonly Kernel ClipCoefF32 = new("clip_coef_f32", U64("sumsq"), F32("max_norm"), U64("norm"), U64("coef"));
    public static readonly Kernel ScaleByF32 = new("scale_by_f32", U64("x"), U32("n"), U64("coef"));

    // kernels/pool.ptx
    public static readonly Kernel MaxPool3dF32 = new("max_pool3d_f32", U64("x"), U64("y"), U64("idx"), U32("planes"), U32("t"), U32("h"), U32("w"), U32("ot"), U32("oh"), U32("ow"), U32("kt"), U32("kh"), U32("kw"), U32("st"), U32("sh"), U32("sw"), U32("pt"), U32("ph"), U32("pw"));
    public static readonly Kernel MaxPool3dBwdF32 = new("max_pool3d_bwd_f32", U64("dy"), U64("idx"), U64("dx"), U32("n"), U32("in_plane"), U32("out_plane"));

    // kernels/reduce.ptx
    public static readonly Kernel SumF32 = new("sum_f32", U64("x"), U64("out"), U32("n"), F32("scale"));
    public static readonly Kernel SumRowsF32 = new("sum_rows_f32", U64("x"), U64("y"), U32("rows"), U32("cols"), F32("scale"));
    public static readonly Kernel SumColsF32 = new("sum_cols_f32", U64("x"), U64("y"), U32("rows"), U32("cols"), F32("scale"));
    public static readonly Kernel CheckIndicesI32 = new("check_indices_i32", U64("check_indices_i32_idx"), U32("check_indices_i32_n"), U32("check_indices_i32_size"),
        U64("check_indices_i32_err"), U32("check_indices_i32_tag"));
    public static readonly Kernel CheckAboveF32 = new("check_above_f32", U64("check_above_f32_x"), U32("check_above_f32_n"), F32("check_above_f32_floor"),
        U64("check_above_f32_err"), U32("check_above_f32_tag"));
    public static readonly Kernel SumColsPartF32 = new("sum_cols_part_f32", U64("x"), U64("partials"), U32("rows"), U32("cols"), U32("chunk_rows"));
    public static readonly Kernel ReducePartF32 = new("reduce_part_f32", U64("x"), U64("y"), U32("nout"), U32("nred"), U32("rank"), Bytes("meta", MetaBytes), U32("op"),
        U32("chunk_len"), U32("chunks"));

    // kernels/sbp.ptx
    public static readonly Kernel GatherF32 = new("gather_f32", U64("gather_f32_x"), U64("gather_f32_idx"), U64("gather_f32_y"), U32("gather_f32_outer"), U32("gather_f32_nsrc"), U32("gather_f32_nidx"), U32("gather_f32_inner"));
    public static readonly Kernel GatherF32x4 = new("gather_f32x4", U64("gather_f32x4_x"), U64("gather_f32x4_idx"), U64("gather_f32x4_y"), U32("gather_f32x4_outer"), U32("gather_f32x4_nsrc"), U32("gather_f32x4_nidx"), U32("gather_f32x4_inner"));
    public static readonly Kernel ScatterAddF32 = new("scatter_add_f32", U64("scatter_add_f32_g"), U64("scatter_add_f32_idx"), U64("scatter_add_f32_dx"), U32("scatter_add_f32_outer"), U32("scatter_add_f32_ndst"), U32("scatter_add_f32_nidx"), U32("scatter_add_f32_inner"));
    public static readonly Kernel ScatterAddF32x4 = new("scatter_add_f32x4", U64("scatter_add_f32x4_g"), U64("scatter_add_f32x4_idx"), U64("scatter_add_f32x4_dx"), U32("scatter_add_f32x4_outer"), U32("scatter_add_f32x4_ndst"), U32("scatter_add_f32x4_nidx"), U32("scatter_add_f32x4_inner"));
    public static readonly Kernel ScatterAddAtomicF32 = new("scatter_add_atomic_f32", U64("scatter_add_atomic_f32_g"), U64("scatter_add_atomic_f32_idx"), U64("scatter_add_atomic_f32_dx"), U32("scatter_add_atomic_f32_outer"), U32("scatter_add_atomic_f32_ndst"), U32("scatter_add_atomic_f32_nidx"), U32("scatter_add_atomic_f32_inner"));

    // kernels/softmax.ptx
    public static readonly Kernel SoftmaxF32 = new("softmax_f32", U64("x"), U64("y"), U32("rows"), U32("cols"));
    public static readonly Kernel SoftmaxBwdF32 = new("softmax_bwd_f32", U64("y"), U64("dy"), U64("dx"), U32("rows"), U32("cols"));
    public static readonly Kernel LogSoftmaxF32 = new("log_softmax_f32", U64("x"), U64("y"), U32("rows"), U32("cols"));
    public static readonly Kernel LogSoftmaxBwdF32 = new("log_softmax_bwd_f32", U64("y"), U64("dy"), U64("dx"), U32("rows"), U32("cols"));

    // kernels/cast.ptx
    public static readonly Kernel ToBf16F32 = new("to_bf16_f32", U64("x"), U64("y"), U32("n"));
    public static readonly Kernel ToF32Bf16 = new("to_f32_bf16", U64("x"), U64("y"), U32("n"));
    public static readonly Kernel ToF16F32 = new("to_f16_f32", U64("x"), U64("y"), U32("n"));
    public static readonly Kernel ToF32F16 = new("to_f32_f16", U64("x"), U64("y"), U32("n"));

    // kernels/transpose.ptx
    public static readonly Kernel TransposeF32 = new("transpose_f32", U64("x"), U64("y"), U32("rank"), Bytes("meta", MetaBytes), U32("a"), U32("b"), U32("tiles_a"),
        U32("tiles_b"), U32("nbatch"), U32("acc"));

    // kernels/tensor.ptx
    public static readonly Kernel StridedCopyF32 = new("strided_copy_f32", U64("x"), U64("y"), U32("n"), U32("rank"), Bytes("meta", MetaBytes), U32("acc"));
    public static readonly Kernel BinaryF32 = new("binary_f32", U64("a"), U64("b"), U64("y"), U32("n"), U32("rank"), Bytes("meta", MetaBytes), U32("op"));
    public static readonly Kernel UnaryF32 = new("unary_f32", U64("x"), U64("y"), U32("n"), U32("op"), F32("alpha"));
    public static readonly Kernel ReduceF32 = new("reduce_f32", U64("x"), U64("y"), U32("nout"), U32("nred"), U32("rank"), Bytes("meta", MetaBytes), U32("op"));

    /// <summary>All of the above, in declaration order.</summary>
    public static IReadOnlyList<Kernel> All { get; } =
    [
        AttentionSoftmaxF32, BceF32, BceBwdF32, BernoulliMaskF32, DropoutF32, AddF32, MulF32, ScaleF32, ReluF32, ReluBwdF32, GeluTanhF32, GeluTanhBwdF32,
        GeluErfF32, GeluErfBwdF32, BiasActB16, BiasActBwdB16, BinaryB16, GatherB16, LayerNormF32, LayerNormBwdF32, LayerNormBwdParamsF32, CrossEntropyF32, CrossEntropyBwdF32, SgdF32,
        AdamwF32, ClipCoefF32, ScaleByF32, MaxPool3dF32, MaxPool3dBwdF32, SumF32, SumRowsF32, SumColsF32, SumColsPartF32, ReducePartF32, GatherF32, GatherF32x4, ScatterAddF32, ScatterAddF32x4,
        ScatterAddAtomicF32, CheckIndicesI32, CheckAboveF32, SoftmaxF32, SoftmaxBwdF32, LogSoftmaxF32, LogSoftmaxBwdF32, ToBf16F32, ToF32Bf16, ToF16F32, ToF32F16, TransposeF32, StridedCopyF32, BinaryF32, UnaryF32, ReduceF32
    ];
}
