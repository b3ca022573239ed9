using Sbp.Autograd;
using Sbp.Backends;
using Sbp.Stochastic;
using Sbp.Tensors;

namespace Sbp;

// Convolutions: conv3d over [N, C, T, H, W] and conv2d over [N, C, H, W] (the same kernels with T = 1).
public static partial class Ops
{
    /// <summary>
    /// 3-D convolution (cross-correlation) with PyTorch's semantics: x [N, C, T, H, W], weight
    /// [O, C / groups, kT, kH, kW], bias [O] (optional) gives [N, O, oT, oH, oW] with
    /// out = floor((in + 2 padding - dilation (k - 1) - 1) / stride) + 1 per axis.
    /// <paramref name="stride"/>, <paramref name="padding"/> and <paramref name="dilation"/> are
    /// (t, h, w) or one value for all three (defaults 1, 0, 1). Groups split the channels: output
    /// channel block g reads input channel block g (groups == C is depthwise). Backward: the data
    /// and filter gradients of the backend; saves x only when the weight needs a gradient and
    /// references the weight only when x needs one.
    /// </summary>
    public static Tensor Conv3d(Tensor x, Tensor weight, Tensor? bias = null,
        int[]? stride = null, int[]? padding = null, int[]? dilation = null, int groups = 1)
    {
        const string op = "conv3d";
        if (Autocast.Type is { } low) return AutocastGemm(low, [x, weight, bias], t => Conv3d(t[0]!, t[1]!, t[2], stride, padding, dilation, groups));
        CheckConvOperands(op, x, weight, bias, rank: 5, "[N, C, T, H, W]", "[O, C/groups, kT, kH, kW]");
        var spec = ConvSpecFor(op, x, weight, groups, 3,
            new Dim3(x.Shape[2], x.Shape[3], x.Shape[4]), new Dim3(weight.Shape[2], weight.Shape[3], weight.Shape[4]),
            SpatialArg(op, "stride", stride, 3, 1, 1), SpatialArg(op, "padding", padding, 3, 0, 0), SpatialArg(op, "dilation", dilation, 3, 1, 1));
        return Convolution(op, x, weight, bias, spec, twoD: false);
    }

    /// <summary>
    /// 2-D convolution with PyTorch's semantics: x [N, C, H, W], weight [O, C / groups, kH, kW],
    /// bias [O] (optional) gives [N, O, oH, oW]; stride, padding and dilation are (h, w) or one
    /// value for both. Runs the 3-D kernels with T = kT = 1.
    /// </summary>
    public static Tensor Conv2d(Tensor x, Tensor weight, Tensor? bias = null,
        int[]? stride = null, int[]? padding = null, int[]? dilation = null, int groups = 1)
    {
        const string op = "conv2d";
        if (Autocast.Type is { } low) return AutocastGemm(low, [x, weight, bias], t => Conv2d(t[0]!, t[1]!, t[2], stride, padding, dilation, groups));
        CheckConvOperands(op, x, weight, bias, rank: 4, "[N, C, H, W]", "[O, C/groups, kH, kW]");
        var spec = ConvSpecFor(op, x, weight, groups, 2,
            new Dim3(1, x.Shape[2], x.Shape[3]), new Dim3(1, weight.Shape[2], weight.Shape[3]),
            SpatialArg(op, "stride", stride, 2, 1, 1), SpatialArg(op, "padding", padding, 2, 0, 0), SpatialArg(op, "dilation", dilation, 2, 1, 1));
        return Convolution(op, x, weight, bias, spec, twoD: true);
    }

    /// <summary>
    /// A per-axis argument given as one value per spatial axis (or one for all), as a Dim3; a 2-D
    /// argument gets <paramref name="timeValue"/> on T. Null gives <paramref name="fallback"/>.
    /// </summary>
    static Dim3 SpatialArg(string op, string name, int[]? values, int axes, int fallback, int timeValue)
    {
        int[] v;
        if (values is null) v = Enumerable.Repeat(fallback, axes).ToArray();
        else if (values.Length == 1) v = Enumerable.Repeat(values[0], axes).ToArray();
        else if (values.Length == axes) v = values;
        else
            throw new ArgumentException(
                $"{op}: {name} [{string.Join(", ", values)}] must have {axes} values ({(axes == 3 ? "t, h, w" : "h, w")}) or one for every axis.");
        return axes == 3 ? new Dim3(v[0], v[1], v[2]) : new Dim3(timeValue, v[0], v[1]);
    }

    static string SpatialText(Dim3 d, bool twoD) => twoD ? $"({d.H}, {d.W})" : d.ToString();

    /// <summary>x and the weight (and the bias) Float32, or of one 16-bit type (autocast rounds them all).</summary>
    static void CheckConvOperands(string op, Tensor x, Tensor weight, Tensor? bias, int rank, string xLayout, string wLayout)
    {
        CheckOperandTypes(op, [(x, "input"), (weight, "weight"), (bias, "bias")]);
        CheckDevices(op, x, weight);
        if (x.Rank != rank)
            throw new ShapeMismatchException($"{op}: the input must be {xLayout} (rank {rank}), got {x.Shape}; add the missing axes with Reshape.");
        if (weight.Rank != rank)
            throw new ShapeMismatchException($"{op}: the weight must be {wLayout} (rank {rank}), got {weight.Shape}.");
        if (bias is not null)
        {
            CheckDevices(op, x, bias);
            if (bias.Rank != 1 || bias.Shape[0] != weight.Shape[0])
                throw new ShapeMismatchException($"{op}: bias {bias.Shape} must be [{weight.Shape[0]}], one value per output channel of weight {weight.Shape}.");
        }
    }

    static ConvSpec ConvSpecFor(string op, Tensor x, Tensor weight, int groups, int axes, Dim3 input, Dim3 kernel, Dim3 stride, Dim3 padding, Dim3 dilation)
    {
        bool twoD = axes == 2;
        int n = x.Shape[0], c = x.Shape[1], o = weight.Shape[0];
        if (groups < 1)
            throw new ArgumentOutOfRangeException(nameof(groups), $"{op}: groups must be >= 1, got {groups}.");
        if (c % groups != 0)
            throw new ShapeMismatchException($"{op}: the input's {c} channels (input {x.Shape}) are not divisible by groups = {groups}; use a group count that divides the channel count.");
        if (o % groups != 0)
            throw new ShapeMismatchException($"{op}: the weight's {o} output channels (weight {weight.Shape}) are not divisible by groups = {groups}; use a multiple of {groups} output channels.");
        if (weight.Shape[1] != c / groups)
            throw new ShapeMismatchException(
                $"{op}: weight {weight.Shape} does not fit input {x.Shape} with groups = {groups}: its second dimension must be C/groups = {c / groups} " +
                $"(the weight layout is {(twoD ? "[O, C/groups, kH, kW]" : "[O, C/groups, kT, kH, kW]")}), got {weight.Shape[1]}.");
        for (int a = 3 - axes; a < 3; a++)
        {
            if (kernel[a] < 1)
                throw new ShapeMismatchException($"{op}: weight {weight.Shape} has an empty kernel {SpatialText(kernel, twoD)}; every kernel size must be >= 1.");
            if (stride[a] < 1) throw new ArgumentException($"{op}: stride {SpatialText(stride, twoD)} must be >= 1 on every axis.");
            if (dilation[a] < 1) throw new ArgumentException($"{op}: dilation {SpatialText(dilation, twoD)} must be >= 1 on every axis.");
            if (padding[a] < 0) throw new ArgumentException($"{op}: padding {SpatialText(padding, twoD)} must be >= 0 on every axis.");
        }
        var spec = new ConvSpec(n, c, o, groups, input, kernel, stride, padding, dilation);
        var output = spec.Output;
        for (int a = 3 - axes; a < 3; a++)
            if (output[a] < 1)
                throw new ShapeMismatchException(
                    $"{op}: input {x.Shape} is too small for kernel {SpatialText(kernel, twoD)} with dilation {SpatialText(dilation, twoD)} and padding {SpatialText(padding, twoD)}: " +
                    $"the output would be {SpatialText(output, twoD)}; every output size floor((in + 2 pad - dil (k - 1) - 1) / stride) + 1 must be >= 1 (pad the input or use a smaller kernel).");
        return spec;
    }

    /// <summary>The [N, C, T, H, W] view a 2-D tensor [N, C, H, W] is to the 3-D kernels (T = 1).</summary>
    static Tensor View5(Tensor t, bool twoD) =>
        t.View(twoD ? new Shape(t.Shape[0], t.Shape[1], 1, t.Shape[2], t.Shape[3]) : t.Shape, register: false);

    /// <summary>The spec for an input of <paramref name="shape"/> (batch and spatial sizes; the rest unchanged).</summary>
    static ConvSpec WithInput(ConvSpec spec, Shape shape, bool twoD) =>
        spec with { Batch = shape[0], Input = twoD ? new Dim3(1, shape[2], shape[3]) : new Dim3(shape[2], shape[3], shape[4]) };

    /// <summary>
    /// SBP for convolutions and pooling over [N, C, (T,) H, W]: position-wise along the batch and
    /// along each spatial axis with kernel 1, stride 1 and no padding; channels and other spatial
    /// axes mix. Parameters (weight, bias) carry no positions.
    /// </summary>
    internal static SbpRule SpatialRule(Dim3 kernel, Dim3 stride, Dim3 padding, bool twoD, string what) => SbpRule.Mapped((input, inRank, _) =>
    {
        if (input > 0) return null;
        var map = new int[inRank];
        map[1] = -1;
        for (int j = 2; j < inRank; j++)
        {
            int a = twoD ? j - 1 : j - 2;
            map[j] = kernel[a] == 1 && stride[a] == 1 && padding[a] == 0 ? j : -1;
        }
        return map;
    }, what);

    static Tensor Convolution(string op, Tensor x, Tensor weight, Tensor? bias, ConvSpec spec0, bool twoD)
    {
        var spec = spec0;
        var o = spec.Output;
        var outShape = twoD ? new Shape(spec.Batch, spec.OutChannels, o.H, o.W) : new Shape(spec.Batch, spec.OutChannels, o.T, o.H, o.W);
        // 16-bit operands (autocast): a 16-bit output from the backend, or with a bias, the Float32 sum rounded once (as linear)
        bool roundAfterBias = x.DType.Is16Bit() && bias is not null;
        var y = roundAfterBias ? Tensor.Empty(op, outShape, x.Device) : NewOfType(op, outShape, x);
        RunOrDispose(y, () =>
        {
            using var x5 = View5(x, twoD);
            using var w5 = View5(weight, twoD);
            using var y5 = View5(y, twoD);
            x.Backend.ConvForward(spec, x5, w5, y5);
        });
        var biasShape = new Shape([spec.OutChannels, .. Enumerable.Repeat(1, outShape.Rank - 2)]);
        if (bias is not null)
        {
            using var wide = roundAfterBias ? CastTo(op, bias, DType.Float32) : null;
            using var b = (wide ?? bias).View(biasShape, register: false);
            y.Backend.Binary(BinaryOp.Add, y, b, y);
        }
        if (roundAfterBias)
            using (var sum = y)
                y = CastTo(op, sum, x.DType);
        Tensor[] inputs = bias is null ? [x, weight] : [x, weight, bias];
        var dt = x.DType;
        return Tape.Record(op, y, inputs, [weight.RequiresGrad ? x : null, x.RequiresGrad ? weight : null], ctx =>
        {
            Tensor? dx = null, dw = null, db = null;
            var spec = WithInput(spec0, ctx.InputShape(0), twoD);   // compact inside an SBP region
            // 16-bit operands (autocast): the data and filter passes read the gradient rounded to their type, as PyTorch's
            // backward runs them on the 16-bit gradient, and give dx and dw rounded to it (cuDNN's 16-bit backward)
            using var g16 = ctx.NeedsGrad(0) || ctx.NeedsGrad(1) ? HalfGrad(ctx, dt) : null;
            using var g5 = View5(g16 ?? ctx.Grad, twoD);
            if (ctx.NeedsGrad(0))
            {
                dx = New(op + ".backward", ctx.InputShape(0), ctx.Grad);
                using var dx5 = View5(dx, twoD);
                using var w5 = View5(ctx.SavedAsHeld(1), twoD);   // 16-bit operands as they are
                dx.Backend.ConvBackwardData(spec, g5, w5, dx5);
            }
            if (ctx.NeedsGrad(1))
            {
                dw = New(op + ".backward", ctx.InputShape(1), ctx.Grad);
                using var dw5 = View5(dw, twoD);
                using var x5 = View5(ctx.SavedAsHeld(0), twoD);
                dw.Backend.ConvBackwardFilter(spec, x5, g5, dw5);
            }
            if (inputs.Length == 3 && ctx.NeedsGrad(2))
            {
                using var summed = SumTo(ctx.Grad, new Shape([1, .. biasShape]));
                db = Reshape(summed, spec.OutChannels);
            }
            return inputs.Length == 3 ? [dx, dw, db] : [dx, dw];
        }, SpatialRule(spec0.Kernel, spec0.Stride, spec0.Padding, twoD, "its kernel, stride or padding spans the axis"));
    }
}
