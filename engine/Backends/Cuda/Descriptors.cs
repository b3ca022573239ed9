using Sbp.Tensors;

namespace Sbp.Backends.Cuda;

/// <summary>
/// What the backend tells cuDNN about a convolution: x [N, C, T, H, W], the filter
/// [O, C / G, kT, kH, kW], y [N, O, oT, oH, oW] (fully packed, float32; without T, kT, oT when the
/// convolution is 2-D: depth 1, no depth padding, stride or dilation), and per spatial axis the
/// padding, stride and dilation, cross-correlation mode, G groups; Tf32 lets cuDNN use TF32 tensor
/// cores (CUDNN_DEFAULT_MATH), else CUDNN_FMA_MATH keeps full float32. Data: the type of x, w and y (Float32, or one
/// 16-bit type with Float32 compute: cuDNN's PSEUDO_HALF / PSEUDO_BFLOAT16 configurations, tensor-core math).
/// <see cref="Key"/> keys the algorithm cache.
/// </summary>
internal sealed record ConvDescriptor(int[] X, int[] W, int[] Y, int[] Pad, int[] Stride, int[] Dilation, int Groups, bool Tf32 = false,
    DType Data = DType.Float32)
{
    public static ConvDescriptor From(in ConvSpec s, bool tf32 = false, DType data = DType.Float32) => From2dOr3d(s, tf32) with { Data = data };

    static ConvDescriptor From2dOr3d(in ConvSpec s, bool tf32)
    {
        var o = s.Output;
        // A convolution that is 2-D (depth 1 throughout) is described as 2-D: cuDNN's 2-D kernels are its fast ones.
        if (s.Input.T == 1 && s.Kernel.T == 1 && s.Padding.T == 0 && s.Stride.T == 1 && s.Dilation.T == 1)
            return new ConvDescriptor(
                [s.Batch, s.InChannels, s.Input.H, s.Input.W],
                [s.OutChannels, s.InPerGroup, s.Kernel.H, s.Kernel.W],
                [s.Batch, s.OutChannels, o.H, o.W],
                [s.Padding.H, s.Padding.W],
                [s.Stride.H, s.Stride.W],
                [s.Dilation.H, s.Dilation.W],
                s.Groups, tf32);
        return new ConvDescriptor(
            [s.Batch, s.InChannels, s.Input.T, s.Input.H, s.Input.W],
            [s.OutChannels, s.InPerGroup, s.Kernel.T, s.Kernel.H, s.Kernel.W],
            [s.Batch, s.OutChannels, o.T, o.H, o.W],
            [s.Padding.T, s.Padding.H, s.Padding.W],
            [s.Stride.T, s.Stride.H, s.Stride.W],
            [s.Dilation.T, s.Dilation.H, s.Dilation.W],
            s.Groups, tf32);
    }

    public string Key => $"x{string.Join(',', X)} w{string.Join(',', W)} p{string.Join(',', Pad)} s{string.Join(',', Stride)} d{string.Join(',', Dilation)} g{Groups}{(Tf32 ? " tf32" : "")}" +
        (Data == DType.Float32 ? "" : $" {Data}");

    /// <summary>Spatial axes: 2 (NCHW) or 3 (NCDHW).</summary>
    public int SpatialAxes => Pad.Length;

    /// <summary>The same convolution with 3 spatial axes (a 2-D one gets depth 1), for code that handles only NCDHW.</summary>
    public ConvDescriptor As3d() => SpatialAxes == 3 ? this : this with
    {
        X = [X[0], X[1], 1, .. X[2..]], W = [W[0], W[1], 1, .. W[2..]], Y = [Y[0], Y[1], 1, .. Y[2..]],
        Pad = [0, .. Pad], Stride = [1, .. Stride], Dilation = [1, .. Dilation],
    };

    /// <summary>Packed NCDHW strides of dims.</summary>
    public static int[] PackedStrides(int[] dims)
    {
        var s = new int[dims.Length];
        long acc = 1;
        for (int i = dims.Length - 1; i >= 0; i--)
        {
            s[i] = checked((int)acc);
            acc *= dims[i];
        }
        return s;
    }
}

/// <summary>cuDNN pooling modes (cudnnPoolingMode_t values).</summary>
internal enum CudnnPoolMode { Max = 0, AverageCountIncludePadding = 1, AverageCountExcludePadding = 2 }

/// <summary>A cuDNN pooling descriptor over packed NCDHW tensors x and y.</summary>
internal sealed record PoolDescriptor(CudnnPoolMode Mode, int[] X, int[] Y, int[] Window, int[] Pad, int[] Stride)
{
    public static PoolDescriptor From(in PoolSpec s)
    {
        var o = s.Output;
        var mode = s.Mode == PoolMode.Max ? CudnnPoolMode.Max
            : s.CountIncludePad ? CudnnPoolMode.AverageCountIncludePadding : CudnnPoolMode.AverageCountExcludePadding;
        return new PoolDescriptor(mode,
            [s.Batch, s.Channels, s.Input.T, s.Input.H, s.Input.W],
            [s.Batch, s.Channels, o.T, o.H, o.W],
            [s.Kernel.T, s.Kernel.H, s.Kernel.W],
            [s.Padding.T, s.Padding.H, s.Padding.W],
            [s.Stride.T, s.Stride.H, s.Stride.W]);
    }
}
