using Sbp.Autograd;
using Sbp.Backends;
using Sbp.Stochastic;
using Sbp.Tensors;

namespace Sbp;

// Pooling: max and average over 3-D [N, C, T, H, W] and 2-D [N, C, H, W] windows, and global average pooling.
public static partial class Ops
{
    /// <summary>
    /// torch.nn.functional.max_pool3d (ceil_mode off): x [N, C, T, H, W] to [N, C, oT, oH, oW],
    /// out = floor((in + 2 padding - kernel) / stride) + 1; padding counts as -infinity and must be
    /// at most kernel / 2. kernel, stride (default: the kernel) and padding (default 0) are
    /// (t, h, w) or one value for all. Saves the Int32 argmax indices (not x); backward adds each
    /// gradient at its window's first maximum.
    /// </summary>
    public static Tensor MaxPool3d(Tensor x, int[] kernel, int[]? stride = null, int[]? padding = null)
    {
        if (AutocastWidens(x)) return Widening([x], wide => MaxPool3d(wide[0]!, kernel, stride, padding));
        return Pooling("max_pool3d", PoolMode.Max, x, kernel, stride, padding, countIncludePad: true, twoD: false);
    }

    /// <summary>max_pool2d over x [N, C, H, W]; kernel, stride and padding are (h, w) or one value. See <see cref="MaxPool3d"/>.</summary>
    public static Tensor MaxPool2d(Tensor x, int[] kernel, int[]? stride = null, int[]? padding = null)
    {
        if (AutocastWidens(x)) return Widening([x], wide => MaxPool2d(wide[0]!, kernel, stride, padding));
        return Pooling("max_pool2d", PoolMode.Max, x, kernel, stride, padding, countIncludePad: true, twoD: true);
    }

    /// <summary>
    /// torch.nn.functional.avg_pool3d (ceil_mode off): the mean of each window, padding counted as
    /// zeros and, with <paramref name="countIncludePad"/>, in the divisor (else the divisor is the
    /// number of input elements in the window). Padding must be at most kernel / 2. Saves nothing;
    /// backward spreads each gradient evenly over its window.
    /// </summary>
    public static Tensor AvgPool3d(Tensor x, int[] kernel, int[]? stride = null, int[]? padding = null, bool countIncludePad = true)
    {
        if (AutocastWidens(x)) return Widening([x], wide => AvgPool3d(wide[0]!, kernel, stride, padding, countIncludePad));
        return Pooling("avg_pool3d", PoolMode.Average, x, kernel, stride, padding, countIncludePad, twoD: false);
    }

    /// <summary>avg_pool2d over x [N, C, H, W]; kernel, stride and padding are (h, w) or one value. See <see cref="AvgPool3d"/>.</summary>
    public static Tensor AvgPool2d(Tensor x, int[] kernel, int[]? stride = null, int[]? padding = null, bool countIncludePad = true)
    {
        if (AutocastWidens(x)) return Widening([x], wide => AvgPool2d(wide[0]!, kernel, stride, padding, countIncludePad));
        return Pooling("avg_pool2d", PoolMode.Average, x, kernel, stride, padding, countIncludePad, twoD: true);
    }

    /// <summary>The mean over every axis after the first two: [N, C, ...] to [N, C] (Ops.Mean, so its backward too).</summary>
    public static Tensor GlobalAvgPool(Tensor x)
    {
        if (AutocastWidens(x)) return Widening([x], wide => GlobalAvgPool(wide[0]!));
        CheckFloat("global_avg_pool", x);
        if (x.Rank < 3)
            throw new ShapeMismatchException($"global_avg_pool: the input must be [N, C, ...] with at least one spatial axis, got {x.Shape}.");
        return Mean(x, Enumerable.Range(2, x.Rank - 2).ToArray());
    }

    static Tensor Pooling(string op, PoolMode mode, Tensor x, int[] kernel, int[]? stride, int[]? padding, bool countIncludePad, bool twoD)
    {
        CheckFloat(op, x);
        ArgumentNullException.ThrowIfNull(kernel);
        int rank = twoD ? 4 : 5, axes = twoD ? 2 : 3;
        if (x.Rank != rank)
            throw new ShapeMismatchException($"{op}: the input must be {(twoD ? "[N, C, H, W]" : "[N, C, T, H, W]")} (rank {rank}), got {x.Shape}.");
        var k = SpatialArg(op, "kernel", kernel, axes, 1, 1);
        var s = stride is null ? k : SpatialArg(op, "stride", stride, axes, 1, 1);
        var p = SpatialArg(op, "padding", padding, axes, 0, 0);
        var input = twoD ? new Dim3(1, x.Shape[2], x.Shape[3]) : new Dim3(x.Shape[2], x.Shape[3], x.Shape[4]);
        for (int a = 3 - axes; a < 3; a++)
        {
            if (k[a] < 1) throw new ArgumentException($"{op}: kernel {SpatialText(k, twoD)} must be >= 1 on every axis.");
            if (s[a] < 1) throw new ArgumentException($"{op}: stride {SpatialText(s, twoD)} must be >= 1 on every axis.");
            if (p[a] < 0 || p[a] > k[a] / 2)
                throw new ArgumentException($"{op}: padding {SpatialText(p, twoD)} must be between 0 and half the kernel {SpatialText(k, twoD)} on every axis (as in PyTorch).");
        }
        var spec = new PoolSpec(mode, x.Shape[0], x.Shape[1], input, k, s, p, countIncludePad);
        var o = spec.Output;
        for (int a = 3 - axes; a < 3; a++)
            if (o[a] < 1)
                throw new ShapeMismatchException(
                    $"{op}: input {x.Shape} is smaller than kernel {SpatialText(k, twoD)} with padding {SpatialText(p, twoD)}: the output would be {SpatialText(o, twoD)}; " +
                    "every output size floor((in + 2 pad - k) / stride) + 1 must be >= 1.");
        if (input.Volume > int.MaxValue)
            throw new ShapeMismatchException($"{op}: an input plane of {input.Volume} elements ({x.Shape}) is too large; pooling indexes a [T, H, W] plane with Int32.");

        var outShape = twoD ? new Shape(spec.Batch, spec.Channels, o.H, o.W) : new Shape(spec.Batch, spec.Channels, o.T, o.H, o.W);
        bool keepIndices = mode == PoolMode.Max && Tape.IsRecording([x]);
        using var indices = keepIndices ? Tensor.Empty(op, outShape, x.Device, DType.Int32) : null;
        var y = New(op, outShape, x);   // after the indices: out of memory here frees them
        using (var x5 = View5(x, twoD))
        using (var y5 = View5(y, twoD))
        using (var i5 = indices is null ? null : View5(indices, twoD))
            x.Backend.PoolForward(spec, x5, y5, i5);
        var spec0 = spec;
        return Tape.Record(op, y, [x], [indices], ctx =>
        {
            var shape = ctx.InputShape(0);   // compact inside an SBP region
            var spec = spec0 with { Batch = shape[0], Input = twoD ? new Dim3(1, shape[2], shape[3]) : new Dim3(shape[2], shape[3], shape[4]) };
            var dx = New(op + ".backward", shape, ctx.Grad);
            using var g5 = View5(ctx.Grad, twoD);
            using var dx5 = View5(dx, twoD);
            using var i5 = mode == PoolMode.Max ? View5(ctx.Saved(0), twoD) : null;
            dx.Backend.PoolBackward(spec, g5, i5, dx5);
            return [dx];
        }, SpatialRule(spec0.Kernel, spec0.Stride, spec0.Padding, twoD, "the pooling window spans the axis"));
    }
}
