using Sbp.Nn;
using Sbp.Rng;
using Sbp.Tensors;

namespace Sbp.Models.Architectures;

/// <summary>
/// torchvision's Conv2Plus1D: "0" Conv3d(in, mid, 1x3x3, stride (1, s, s)), "1" BatchNorm3d(mid), ReLU,
/// "3" Conv3d(mid, out, 3x1x1, stride (s, 1, 1)), all without bias. The names are torchvision's
/// (its nn.Sequential numbers the ReLU as "2").
/// </summary>
public sealed class Conv2Plus1d : Module
{
    public Conv2Plus1d(int inPlanes, int outPlanes, int midPlanes, int stride, RandomSource rng, Device? device = null) : base(device)
    {
        Spatial = RegisterModule("0", new Conv3d(inPlanes, midPlanes, [1, 3, 3], rng, stride: [1, stride, stride], padding: [0, 1, 1], bias: false, device: device));
        Norm = RegisterModule("1", new BatchNorm3d(midPlanes, device: device));
        Temporal = RegisterModule("3", new Conv3d(midPlanes, outPlanes, [3, 1, 1], rng, stride: [stride, 1, 1], padding: [1, 0, 0], bias: false, device: device));
    }

    public Conv3d Spatial { get; }
    public BatchNorm3d Norm { get; }
    public Conv3d Temporal { get; }

    public override Tensor Forward(Tensor x)
    {
        using var scope = TensorScope.Begin();
        return scope.Keep(Spatial.Forward(x).Consume(Norm.Forward).Consume(Ops.Relu).Consume(Temporal.Forward));
    }
}

/// <summary>A convolution then batch norm, named as torchvision's nn.Sequential: "0" and "1".</summary>
public sealed class ConvNorm3d : Module
{
    public ConvNorm3d(Module conv, int channels, Device? device = null) : base(device)
    {
        Conv = RegisterModule("0", conv);
        Norm = RegisterModule("1", new BatchNorm3d(channels, device: device));
    }

    public Module Conv { get; }
    public BatchNorm3d Norm { get; }

    public override Tensor Forward(Tensor x)
    {
        using var scope = TensorScope.Begin();
        return scope.Keep(Conv.Forward(x).Consume(Norm.Forward));
    }
}

/// <summary>
/// torchvision's R2Plus1dStem: "0" Conv3d(3, mid, 1x7x7, stride (1, 2, 2)), "1" BN, ReLU, "3" Conv3d(mid, width,
/// 3x1x1), "4" BN, ReLU; no biases.
/// </summary>
public sealed class R2Plus1dStem : Module
{
    public R2Plus1dStem(int inChannels, int mid, int width, RandomSource rng, Device? device = null) : base(device)
    {
        Spatial = RegisterModule("0", new Conv3d(inChannels, mid, [1, 7, 7], rng, stride: [1, 2, 2], padding: [0, 3, 3], bias: false, device: device));
        Norm1 = RegisterModule("1", new BatchNorm3d(mid, device: device));
        Temporal = RegisterModule("3", new Conv3d(mid, width, [3, 1, 1], rng, padding: [1, 0, 0], bias: false, device: device));
        Norm2 = RegisterModule("4", new BatchNorm3d(width, device: device));
    }

    public Conv3d Spatial { get; }
    public BatchNorm3d Norm1 { get; }
    public Conv3d Temporal { get; }
    public BatchNorm3d Norm2 { get; }

    public override Tensor Forward(Tensor x)
    {
        using var scope = TensorScope.Begin();
        return scope.Keep(Spatial.Forward(x).Consume(Norm1.Forward).Consume(Ops.Relu)
            .Consume(Temporal.Forward).Consume(Norm2.Forward).Consume(Ops.Relu));
    }
}

/// <summary>
/// torchvision's video BasicBlock with Conv2Plus1D: relu(conv2(relu(conv1(x))) + skip(x)), conv1 = "conv1"
/// (Conv2Plus1D with the stride, BN), conv2 = "conv2" (Conv2Plus1D, BN), skip = identity or "downsample"
/// (1x1x1 Conv3d with the stride on every axis, BN). One middle width for both (torchvision's rule).
/// </summary>
public sealed class R2Plus1dBlock : Module
{
    public R2Plus1dBlock(int inPlanes, int planes, int stride, RandomSource rng, Device? device = null) : base(device)
    {
        int mid = VideoResNetConfig.MidPlanes(inPlanes, planes);
        Conv1 = RegisterModule("conv1", new ConvNorm3d(new Conv2Plus1d(inPlanes, planes, mid, stride, rng, device), planes, device));
        Conv2 = RegisterModule("conv2", new ConvNorm3d(new Conv2Plus1d(planes, planes, mid, 1, rng, device), planes, device));
        if (stride != 1 || inPlanes != planes)
            Downsample = RegisterModule("downsample", new ConvNorm3d(
                new Conv3d(inPlanes, planes, [1, 1, 1], rng, stride: [stride, stride, stride], bias: false, device: device), planes, device));
    }

    public ConvNorm3d Conv1 { get; }
    public ConvNorm3d Conv2 { get; }
    public ConvNorm3d? Downsample { get; }

    public override Tensor Forward(Tensor x)
    {
        using var scope = TensorScope.Begin();
        var y = Conv1.Forward(x).Consume(Ops.Relu).Consume(Conv2.Forward);
        var skip = Downsample is null ? x : Downsample.Forward(x);
        var sum = y.Consume(h => Ops.Add(h, skip));
        if (!ReferenceEquals(skip, x)) skip.Dispose();
        return scope.Keep(sum.Consume(Ops.Relu));
    }
}
