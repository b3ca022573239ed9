using Sbp.Autograd;
using Sbp.Optim;
using Sbp.Rng;
using Sbp.Stochastic;
using Sbp.Tensors;

namespace Sbp.OpCases;

/// <summary>
/// Every backend op (each IBackend member, through the functional API and autograd) as a case on seeded
/// inputs, small enough for the simulated device. The one table all devices run: the CPU against finite
/// differences, the simulated CUDA device and a real GPU against the CPU (see the project file).
/// </summary>
public static class OpTable
{
    /// <summary>A gradient case: y = <paramref name="forward"/>(inputs) and every leaf's gradient.</summary>
    static OpCase Grad(string name, Func<CaseInputs, Tensor> forward, double rtol = 1e-4, double atol = 1e-5) => new(name, forward, null, rtol, atol);

    /// <summary>A case without autograd: <paramref name="run"/> returns its own named results.</summary>
    static OpCase Plain(string name, Func<CaseInputs, IEnumerable<(string What, float[] Values)>> run, double rtol = 1e-4, double atol = 1e-5) => new(name, null, run, rtol, atol);

    /// <summary>The gradient cases a finite-difference check applies to.</summary>
    public static IEnumerable<OpCase> WithFiniteDifferences => All.Where(c => c.HasFiniteDifferenceCheck);

    /// <summary>The cases, each small enough for the simulated device too.</summary>
    public static IReadOnlyList<OpCase> All { get; } =
    [
        // Binary / Copy (broadcast) / ReduceSum (the broadcast's backward)
        Grad("add (broadcast)", c => Ops.Add(c.F([4, 33]), c.F([33]))),
        Grad("sub (broadcast both)", c => Ops.Sub(c.F([2, 1, 5]), c.F([3, 1]))),
        Grad("add (equal shapes)", c => Ops.Add(c.F([3, 70]), c.F([3, 70]))),
        Grad("mul (equal shapes)", c => Ops.Mul(c.F([1000]), c.F([1000]))),
        Grad("div", c => Ops.Div(c.F([3, 5, 7]), c.F([3, 5, 7], 0.5f, 2f))),
        Grad("pow", c => Ops.Pow(c.F([3, 5, 7], 0.5f, 2f), c.F([7], -1f, 2f)), 1e-4, 1e-4),
        // Unary / ActivationBackward
        Grad("exp", c => Ops.Exp(c.F([300]))),
        Grad("log", c => Ops.Log(c.F([300], 0.5f, 2f))),
        Grad("sqrt", c => Ops.Sqrt(c.F([300], 0.5f, 2f))),
        Grad("relu", c => Ops.Relu(c.AwayFromZero([513]))),
        Grad("gelu (erf)", c => Ops.Gelu(c.F([513], -3f, 3f))),
        Grad("gelu (tanh)", c => Ops.Gelu(c.F([513], -3f, 3f), tanhApproximation: true)),
        Grad("scale", c => Ops.Mul(c.F([257]), 0.37f)),
        // Gemm
        Grad("matmul", c => Ops.Matmul(c.F([5, 17]), c.F([17, 9])), 1e-4, 1e-4),
        Grad("matmul (batched)", c => Ops.Matmul(c.F([3, 8, 16]), c.F([3, 16, 12])), 1e-4, 1e-4),
        Grad("linear", c => Ops.Linear(c.F([6, 24]), c.F([10, 24]), c.F([10])), 1e-4, 1e-4),
        // ReduceSum / ReduceMax
        Grad("sum (middle axis)", c => Ops.Sum(c.F([4, 6, 8]), [1])),
        Grad("sum (trailing axes)", c => Ops.Sum(c.F([4, 6, 8]), [1, 2])),
        Grad("sum (leading axis)", c => Ops.Sum(c.F([40, 7]), [0])),
        Grad("mean (all)", c => Ops.Mean(c.F([5, 66]))),
        Grad("max (last axis)", c => Ops.Max(c.Distinct([4, 6, 8]), [2])),
        // The two-stage reductions (block partials, then a pass over them) that large shapes take
        Grad("sum (leading axis, many rows)", c => Ops.Sum(c.F([600, 40]), [0])),
        Grad("sum (outer and inner axes, chunked)", c => Ops.Sum(c.F([4, 3, 600]), [0, 2])),
        Grad("max (middle axis, chunked)", c => Ops.Max(c.Distinct([2, 1500, 3]), [1])),
        // Permute / CopyAlongDim / Layout
        Grad("permute", c => Ops.Permute(c.F([2, 3, 4, 5]), 0, 2, 3, 1)),
        // transpose_f32: the last axis moved, partial 32 x 32 tiles, a batch of tiles; and a window partition's 8-D permute
        Grad("permute (tiled transpose)", c => Ops.Permute(c.F([3, 40, 36]), 0, 2, 1)),
        Grad("permute (window partition)", c => Ops.Permute(c.F([1, 2, 2, 3, 17, 2, 18, 1]), 0, 1, 3, 5, 2, 4, 6, 7)),
        Grad("slice", c => Ops.Slice(c.F([4, 9, 3]), 1, 2, 5)),
        Grad("concat", c => Ops.Concat([c.F([2, 3, 4]), c.F([2, 5, 4])], 1)),
        Grad("roll", c => Ops.Roll(c.F([2, 4, 6, 3]), [1, -2], [1, 2])),
        Grad("pad", c => Ops.Pad(c.F([2, 3, 5]), [1, 2, 0, 1])),
        // IndexSelect / IndexAdd
        Grad("index_select (inner % 4 == 0)", c => Ops.IndexSelect(c.F([10, 8]), 0, c.I([7], 0, 10))),
        Grad("index_select (odd inner)", c => Ops.IndexSelect(c.F([3, 10, 5]), 1, c.I([6], 0, 10))),
        Grad("index_add (repeated indices)", c => Ops.IndexAdd(c.F([6, 5]), 0, c.I([9], 0, 6), c.F([9, 5]))),
        new OpCase("grad_mask (SBP)", c => Ops.Mul(Ops.GradMask(c.F([2, 8, 6]), 1, KeepMask.Strided(8, 2, 1)), 1.5f), null, BackwardIsDerivative: false),
        // Softmax / SoftmaxBackward
        Grad("softmax (last axis)", c => Ops.Softmax(c.F([7, 33], -3f, 3f))),
        Grad("softmax (axis 1)", c => Ops.Softmax(c.F([3, 9, 4], -3f, 3f), 1)),
        Grad("log_softmax", c => Ops.LogSoftmax(c.F([7, 33], -3f, 3f))),
        Grad("attention (bias)", c => Ops.ScaledDotProductAttention(c.F([2, 2, 9, 8]), c.F([2, 2, 9, 8]), c.F([2, 2, 9, 8]), c.F([2, 9, 9])), 1e-4, 1e-4),
        // LayerNorm
        Grad("layer_norm", c => Ops.LayerNorm(c.F([6, 40]), [40], c.F([40]), c.F([40])), 1e-4, 1e-4),
        // BatchNorm (train: cuDNN; eval: binary broadcasts)
        Grad("batch_norm (train)", c => Ops.BatchNorm(c.F([4, 6, 5, 5]), c.F([6]), c.F([6]), c.F([6], grad: false), c.F([6], 0.5f, 2f, grad: false), BatchNormMode.Train), 1e-4, 1e-4),
        Grad("batch_norm (train, eps 0.1: the layer's eps reaches backward)", c => Ops.BatchNorm(c.F([4, 6, 5, 5], -0.3f, 0.3f), c.F([6]), c.F([6]), c.F([6], grad: false),
            c.F([6], 0.5f, 2f, grad: false), BatchNormMode.Train, eps: 0.1f), 1e-4, 1e-4),
        Grad("batch_norm (eval)", c => Ops.BatchNorm(c.F([4, 6, 3, 3]), c.F([6]), c.F([6]), c.F([6], grad: false), c.F([6], 0.5f, 2f, grad: false), BatchNormMode.Eval), 1e-4, 1e-4),
        // Conv (cuDNN forward, backward data, backward filter)
        Grad("conv2d (stride 2, pad 1)", c => Ops.Conv2d(c.F([2, 3, 9, 9]), c.F([4, 3, 3, 3]), c.F([4]), [2, 2], [1, 1]), 1e-4, 1e-4),
        Grad("conv2d (depthwise)", c => Ops.Conv2d(c.F([2, 4, 7, 7]), c.F([4, 1, 3, 3]), null, null, [1, 1], groups: 4), 1e-4, 1e-4),
        Grad("conv3d (patch embed)", c => Ops.Conv3d(c.F([1, 3, 4, 8, 8]), c.F([5, 3, 2, 4, 4]), c.F([5]), [2, 4, 4]), 1e-4, 1e-4),
        // Pool
        Grad("max_pool3d", c => Ops.MaxPool3d(c.Distinct([1, 2, 4, 6, 6]), [2, 3, 3], [2, 2, 2], [0, 1, 1])),
        Grad("avg_pool2d", c => Ops.AvgPool2d(c.F([2, 3, 7, 7]), [3, 3], [2, 2], [1, 1], countIncludePad: false)),
        Grad("global_avg_pool", c => Ops.GlobalAvgPool(c.F([2, 5, 3, 4, 4]))),
        // Losses
        Grad("cross_entropy", c => Ops.CrossEntropy(c.F([8, 10], -3f, 3f), c.I([8], 0, 10))),
        Grad("cross_entropy (label smoothing)", c => Ops.CrossEntropy(c.F([8, 10], -3f, 3f), c.I([8], 0, 10), labelSmoothing: 0.1f)),
        Grad("bce_with_logits", c => Ops.BinaryCrossEntropyWithLogits(c.F([6, 7], -3f, 3f), c.F([6, 7], 0f, 1f, grad: false))),
        // BernoulliMask (bit-identical masks on every backend)
        Grad("dropout", c => Ops.Dropout(c.F([4, 129]), 0.3f, new RandomSource(5))),
        // Fill / CopyFromHost / CopyToHost
        Plain("fill + copies", c => [("full", Tensor.Full(new Shape(3, 65), 0.625f, c.Device).ToArray()), ("roundtrip", c.F([3, 65], grad: false).ToArray())]),
        // SgdUpdate / AdamWUpdate / SumOfSquares
        Plain("sgd (momentum, nesterov)", c => OptimizerSteps(c, p => new Sgd([("p", p)], 0.1f, momentum: 0.9f, nesterov: true, weightDecay: 0.01f))),
        Plain("adamw", c => OptimizerSteps(c, p => new AdamW([("p", p)], 1e-2f, eps: 1e-4f, weightDecay: 0.05f))),
        Plain("grad scaler (skip, back-off, growth)", ScaledSteps),
        Plain("grad norm (sum of squares)", c =>
        {
            var a = c.F([300], grad: false);
            var b = c.F([7, 11], grad: false);
            return [("sum_sq", [(float)(a.Backend.SumOfSquares(a) + b.Backend.SumOfSquares(b))])];
        }, 1e-5, 1e-5),
        // ClipGradNorm: clipped (norm above the limit) and left alone (below it)
        Plain("grad clip (global norm)", c => ClippedGradients(c, 0.5f).Concat(ClippedGradients(c, 1e6f)), 1e-5, 1e-6),
        // Cast: Float32 <-> BFloat16 / Float16, bit patterns (specials, ties, subnormals, overflow); and through autograd
        Plain("casts (bfloat16, float16 bits)", CastBits, 0, 0),
        new OpCase("saved as bfloat16 (layer_norm, gelu, linear)", c =>
        {
            using var packed = Tape.SaveActivationsAs(DType.BFloat16);   // backward reads the packed activations, widened
            return Ops.Linear(Ops.Gelu(Ops.LayerNorm(c.F([6, 33]), [33], c.F([33], 0.5f, 1.5f))), c.F([10, 33]));
        }, null, 1e-4, 1e-5, BackwardIsDerivative: false),
        new OpCase("autocast bfloat16 (linear, gelu, attention)", c =>
        {
            using var autocast = Autocast.Begin(DType.BFloat16);   // 16-bit inputs, Float32 accumulation, 16-bit outputs
            var h = Ops.Gelu(Ops.Linear(c.F([2, 2, 9, 8]), c.F([8, 8], -0.5f, 0.5f), c.F([8])));
            return Ops.To(Ops.ScaledDotProductAttention(h, h, h), DType.Float32);
        }, null, 2e-2, 2e-2, BackwardIsDerivative: false),
        new OpCase("autocast float16 attention (bias, window mask)", c =>
        {
            using var autocast = Autocast.Begin(DType.Float16);   // q, k, v and the bias rounded; P saved in float16; 9 keys (odd rows)
            var mask = c.F([3, 1, 9, 9], -3f, 0f, grad: false);
            return Ops.To(Ops.ScaledDotProductAttention(c.F([6, 2, 9, 8]), c.F([6, 2, 9, 8]), c.F([6, 2, 9, 6]), c.F([2, 9, 9]), mask), DType.Float32);
        }, null, 2e-2, 2e-2, BackwardIsDerivative: false),
        new OpCase("autocast bfloat16 (bias_gelu)", c =>
        {
            using var autocast = Autocast.Begin(DType.BFloat16);   // a 16-bit input with a Float32 bias: a 16-bit output
            return Ops.To(Ops.BiasGelu(Ops.To(c.F([6, 40], -3f, 3f), DType.BFloat16), c.F([40])), DType.Float32);
        }, null, 2e-2, 2e-2, BackwardIsDerivative: false),
        new OpCase("autocast bfloat16 (conv3d, relu)", c =>
        {
            using var autocast = Autocast.Begin(DType.BFloat16);   // 16-bit x, weight and bias; the Float32 sum with the bias rounded once
            return Ops.To(Ops.Relu(Ops.Conv3d(c.F([2, 3, 3, 6, 6]), c.F([4, 3, 3, 3, 3], -0.5f, 0.5f), c.F([4]), stride: [1, 2, 2], padding: [1])), DType.Float32);
        }, null, 2e-2, 2e-2, BackwardIsDerivative: false),
        new OpCase("autocast float16 (bias_gelu tanh, gelu)", c =>
        {
            using var autocast = Autocast.Begin(DType.Float16);   // 16-bit in and out (bias_act_b16 on CUDA), Float32 gradients
            var h = Ops.BiasGelu(Ops.To(c.F([5, 24], -4f, 4f), DType.Float16), c.F([24]), tanhApproximation: true);
            return Ops.To(Ops.Gelu(h), DType.Float32);
        }, null, 2e-3, 2e-3, BackwardIsDerivative: false),
        new OpCase("autocast bfloat16 (residual add, drop_path, dropout, promoted)", c =>
        {
            using var autocast = Autocast.Begin(DType.BFloat16);   // a 16-bit operand beside a Float32 one: read widened (binary_b16)
            var x = c.F([4, 6, 10]);
            var branch = Ops.To(c.F([4, 6, 10], -2f, 2f), DType.BFloat16);
            var h = Ops.Add(Ops.Add(x, branch), Ops.DropPath(branch, 0.3f, new RandomSource(6)));   // x + a 16-bit branch; a per-sample mask
            h = Ops.Add(h, Ops.Dropout(branch, 0.25f, new RandomSource(8)));   // a mask per element
            var g = Ops.Sub(c.F([10]), branch);   // a broadcast Float32 operand first: widened whole (sub does not commute)
            return Ops.Div(Ops.Sub(Ops.Mul(branch, c.F([10], 0.5f, 1.5f)), Ops.Mul(h, g)), c.F([10], 0.5f, 2f));
        }, null, 1e-5, 1e-6, BackwardIsDerivative: false),
        new OpCase("SBP sparse cache under autocast (attention over 9 keys)", c =>
        {
            using var autocast = Autocast.Begin(DType.Float16);   // P saved in float16 with odd rows: its kept rows gathered as 2-byte elements
            var (wq, wk) = (c.F([8, 8], -0.5f, 0.5f), c.F([8, 8], -0.5f, 0.5f));
            return Ops.To(SbpRegion.Run("op table attention", c.F([2, 9, 8]), 1, KeepMask.Strided(9, 2, 0), z =>
            {
                var q = Ops.Reshape(Ops.Linear(z, wq), 2, 1, 9, 8);
                var kv = Ops.Reshape(Ops.Linear(z, wk), 2, 1, 9, 8);
                return Ops.Reshape(Ops.ScaledDotProductAttention(q, kv, kv), 2, 9, 8);
            }, new RegionOptions(RegionMode.SparseCache)), DType.Float32);
        }, null, 2e-2, 2e-2, BackwardIsDerivative: false),
        new OpCase("autocast bfloat16 (layer_norm of a 16-bit input, to a 16-bit output)", c =>
        {
            using var autocast = Autocast.Begin(DType.BFloat16);   // x read widened by the kernels (layer_norm_f32 x_type), saved as it is; and a 16-bit y
            var x = Ops.To(c.F([6, 40], -2f, 3f), DType.BFloat16);
            var y16 = Ops.LayerNorm(c.F([6, 40], -1f, 1f), [40], c.F([40], 0.5f, 1.5f), null, 1e-5f, DType.BFloat16);   // written rounded (y_type)
            return Ops.Add(Ops.LayerNorm(x, [40], c.F([40], 0.5f, 1.5f), c.F([40])), y16);
        }, null, 1e-4, 1e-4, BackwardIsDerivative: false),
        new OpCase("autocast float16 (cross_entropy of 16-bit logits)", c =>
        {
            using var autocast = Autocast.Begin(DType.Float16);   // logits read widened by the kernels (z_type), saved as they are
            return Ops.CrossEntropy(Ops.To(c.F([5, 11], -3f, 3f), DType.Float16), c.I([5], 0, 11), 0.1f, c.F([11], 0.5f, 1.5f, grad: false));
        }, null, 1e-4, 1e-5, BackwardIsDerivative: false),
        new OpCase("autocast float16 (conv3d without bias)", c =>
        {
            using var autocast = Autocast.Begin(DType.Float16);   // x, w and y 16-bit: cuDNN's 16-bit convolution on CUDA
            return Ops.To(Ops.Conv3d(c.F([2, 3, 3, 6, 6]), c.F([4, 3, 3, 3, 3], -0.5f, 0.5f), null, stride: [1, 2, 2], padding: [1]), DType.Float32);
        }, null, 2e-2, 2e-2, BackwardIsDerivative: false),
        new OpCase("autocast bfloat16 (Swin's pad, roll, window partition and reverse)", c =>
        {
            using var autocast = Autocast.Begin(DType.BFloat16);   // 16-bit data moved as Float32 pairs: no cast, exact
            var x = Ops.Pad(Ops.To(c.F([1, 3, 5, 6, 4]), DType.BFloat16), [0, 0, 0, 2, 0, 0, 0, 1]);   // [1, 4, 5, 8, 4]
            x = Ops.Roll(x, [-1, -2], [1, 3]);
            var windows = Ops.WindowPartition3d(x, (2, 5, 4));
            return Ops.To(Ops.Roll(Ops.WindowReverse3d(windows, (2, 5, 4), 1, 4, 5, 8), [1, 2], [1, 3]), DType.Float32);
        }, null, 0, 0, BackwardIsDerivative: false),
        new OpCase("autocast float16 (relu)", c =>
        {
            using var autocast = Autocast.Begin(DType.Float16);   // exact in 16 bits: a 16-bit output
            return Ops.To(Ops.Relu(Ops.To(c.F([7, 33], -2f, 2f), DType.Float16)), DType.Float32);
        }, null, 1e-6, 1e-6, BackwardIsDerivative: false),
        new OpCase("saved as bfloat16 (attention)", c =>
        {
            using var packed = Tape.SaveActivationsAs(DType.BFloat16);   // P written in bfloat16 by the forward
            return Ops.ScaledDotProductAttention(c.F([2, 2, 9, 8]), c.F([2, 2, 9, 8]), c.F([2, 2, 9, 8]), c.F([2, 9, 9]));
        }, null, 1e-4, 1e-5, BackwardIsDerivative: false),
        Plain("gemm on 16-bit operands (bfloat16, float16)", c =>
        {
            var results = new List<(string, float[])>();
            foreach (var dt in new[] { DType.BFloat16, DType.Float16 })
            {
                var a = c.F([3, 37, 70], -2f, 2f, grad: false).To(dt);
                var b = c.F([70, 45], -2f, 2f, grad: false).To(dt);
                results.Add(($"{dt} out", Ops.Matmul(a, b).ToArray()));                          // 16-bit output
                var w = Ops.Transpose(b.To(DType.Float32), 0, 1).To(dt);
                var bias = c.F([45], grad: false).To(dt);
                results.Add(($"{dt} linear", Ops.Linear(a, w, bias).ToArray()));
                results.Add(($"{dt} linear rows", Ops.LinearRows(a, w, bias, 7, 20).ToArray()));   // an offset into a 16-bit weight
                var w32 = Ops.Transpose(b.To(DType.Float32), 0, 1);
                results.Add(($"{dt} linear rows, Float32 weight", Ops.LinearRows(a, w32, bias, 7, 20).ToArray()));   // read rounded to dt
            }
            return results;
        }, 2e-2, 2e-2),
        new OpCase("to (bfloat16 and back)", c => Ops.Mul(Ops.To(Ops.To(c.F([5, 67], -3f, 3f), DType.BFloat16), DType.Float32), 1.5f), null, 0, 0, BackwardIsDerivative: false),
        // CheckIndices / CheckAbove (a GPU raises at the next read)
        Plain("value checks (indices, floor)", c => [("failures", FirstFailures(c))], 0, 0),
    ];

    /// <summary>
    /// Float32 values cast to BFloat16 and Float16, as bit patterns (a float16 NaN as -1: the GPU's canonical NaN has
    /// other bits than the CPU's), and cast back: zeros, infinities, NaN, the largest finite values and just past
    /// them, halfway ties, subnormals of both types, and 2000 values spread over 2^-30..2^20 with random signs.
    /// </summary>
    static IEnumerable<(string What, float[] Values)> CastBits(CaseInputs c)
    {
        var values = new List<float> { 0f, -0f, float.PositiveInfinity, float.NegativeInfinity, float.NaN, 65504f, 65520f, -65536f, 3.3895314e38f,
            float.MaxValue, 1f + 1f / 256, 1f + 3f / 256, 1f + 1f / 2048, 1f + 3f / 2048, 5.96e-8f, 2.98e-8f, 6.1e-5f, 1e-40f, -1e-45f, 1.17549435e-38f };
        var rng = new Random(11);
        for (int i = 0; i < 2000; i++) values.Add((float)(Math.Pow(2, -30 + 50 * rng.NextDouble()) * (rng.Next(2) == 0 ? -1 : 1)));
        using var x = Tensor.FromArray([.. values], new Shape(values.Count), c.Device);
        var results = new List<(string, float[])>();
        foreach (var dtype in new[] { DType.BFloat16, DType.Float16 })
        {
            using var y = Ops.To(x, dtype);
            using var back = Ops.To(y, DType.Float32);
            var wide = back.ToArray();
            results.Add(($"{dtype} bits", [.. wide.Select(v => dtype == DType.BFloat16 ? BitConverter.SingleToUInt32Bits(v) >> 16
                : float.IsNaN(v) ? -1f : BitConverter.HalfToUInt16Bits((Half)v))]));
            results.Add(($"{dtype} widened", [.. wide.Select(v => float.IsNaN(v) ? -1f : v)]));
        }
        return results;
    }

    /// <summary>Gradients of two parameters (4100 elements: two blocks of partial sums) clipped to maxNorm, and the norm.</summary>
    static IEnumerable<(string What, float[] Values)> ClippedGradients(CaseInputs c, float maxNorm)
    {
        var a = c.F([4100], grad: false);
        var b = c.F([7, 11], grad: false);
        a.RequiresGrad = b.RequiresGrad = true;
        using (var tape = Tape.Begin())
            tape.Backward(Ops.Add(Ops.Sum(Ops.Mul(a, c.F([4100], grad: false))), Ops.Sum(Ops.Mul(b, b))));
        using var norm = GradClip.Clip([a, b], maxNorm);
        return [($"norm (max {maxNorm})", norm.ToArray()), ($"a.grad (max {maxNorm})", a.Grad!.ToArray()), ($"b.grad (max {maxNorm})", b.Grad!.ToArray())];
    }

    /// <summary>Position and value of each check's failure: none for good values, then a bad index and a -inf.</summary>
    static float[] FirstFailures(CaseInputs c)
    {
        var found = new List<float>();
        Exception Record(long position, int value, string note)
        {
            found.AddRange([position, value]);
            return new InvalidDataException("check failed" + note);
        }
        var fine = c.F([300], grad: false);
        var indices = Tensor.FromArray(Enumerable.Range(0, 300).Select(i => i == 123 ? 10 : i % 10).ToArray(), new Shape(300), c.Device);
        var floats = Tensor.FromArray(Enumerable.Range(0, 300).Select(i => i == 77 ? float.NegativeInfinity : -1e30f * (i % 3)).ToArray(), new Shape(300), c.Device);
        foreach (var check in new Action[]
        {
            () => fine.Backend.CheckAbove(fine, -2f, Record),
            () => indices.Backend.CheckIndices(indices, 11, Record),
            () => indices.Backend.CheckIndices(indices, 10, Record),
            () => floats.Backend.CheckAbove(floats, float.NegativeInfinity, Record),
        })
        {
            try
            {
                check();
                _ = fine.ToArray();   // where a GPU raises what its check found
            }
            catch (InvalidDataException) { }
        }
        return [.. found];
    }

    /// <summary>Three optimizer steps on a [257] parameter with seeded gradients; the parameter after each.</summary>
    /// <summary>
    /// Four AdamW steps under a GradScaler (scale 1024, growth every 2 clean steps); the second step's loss is infinite,
    /// so it is skipped and the scale backs off: the weights after each step and the scales 1024, 512, 512, 1024.
    /// </summary>
    static IEnumerable<(string What, float[] Values)> ScaledSteps(CaseInputs c)
    {
        var p = c.F([300], grad: false);
        p.RequiresGrad = true;
        using var optimizer = new AdamW([("p", p)], 1e-2f, eps: 1e-4f, weightDecay: 0.05f);
        var scaler = new GradScaler(initScale: 1024f, growthInterval: 2);
        var results = new List<(string What, float[] Values)>();
        var scales = new List<float>();
        for (int s = 0; s < 4; s++)
        {
            using (var tape = Tape.Begin())
            {
                var loss = Ops.Sum(Ops.Mul(p, c.F([300], grad: false)));
                tape.Backward(scaler.ScaleLoss(s == 1 ? Ops.Mul(loss, float.PositiveInfinity) : loss));
            }
            scaler.Step(optimizer);
            scaler.Update();
            optimizer.ZeroGrad();
            results.Add(($"step {s + 1}", p.ToArray()));
            scales.Add(scaler.Scale);
        }
        results.Add(("scales", [.. scales]));
        return results;
    }

    static IEnumerable<(string What, float[] Values)> OptimizerSteps(CaseInputs c, Func<Tensor, Optimizer> create)
    {
        var p = c.F([257], grad: false);
        p.RequiresGrad = true;
        using var optimizer = create(p);
        var results = new List<(string What, float[] Values)>();
        for (int s = 0; s < 3; s++)
        {
            using (var tape = Tape.Begin())
            {
                var loss = Ops.Sum(Ops.Mul(p, c.F([257], grad: false)));
                tape.Backward(loss);
            }
            optimizer.Step();
            optimizer.ZeroGrad();
            results.Add(($"step {s + 1}", p.ToArray()));
        }
        return results;
    }
}
