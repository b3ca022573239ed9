using Sbp.Nn;
using Sbp.Rng;
using Sbp.Tensors;

namespace Sbp.Models.Architectures;

/// <summary>
/// torchvision's BasicBlock on x [N, C, H, W]: conv1 (3x3, stride), bn1, relu, conv2 (3x3), bn2,
/// plus the identity or "downsample" (1x1 conv with the stride, bn), relu.
/// </summary>
public sealed class BasicBlock2d : Module
{
    public BasicBlock2d(int inChannels, int width, int stride, RandomSource rng, Device? device = null) : base(device)
    {
        Conv1 = RegisterModule("conv1", new Conv2d(inChannels, width, 3, rng, stride: [stride], padding: [1], bias: false, device: device));
        Bn1 = RegisterModule("bn1", new BatchNorm2d(width, device: device));
        Conv2 = RegisterModule("conv2", new Conv2d(width, width, 3, rng, padding: [1], bias: false, device: device));
        Bn2 = RegisterModule("bn2", new BatchNorm2d(width, device: device));
        if (stride != 1 || inChannels != width)
            Downsample = RegisterModule("downsample", new Sequential(
                new Conv2d(inChannels, width, 1, rng, stride: [stride], bias: false, device: device), new BatchNorm2d(width, device: device)));
    }

    public Conv2d Conv1 { get; }
    public BatchNorm2d Bn1 { get; }
    public Conv2d Conv2 { get; }
    public BatchNorm2d Bn2 { get; }
    public Sequential? Downsample { get; }

    public override Tensor Forward(Tensor x)
    {
        using var scope = TensorScope.Begin();
        var y = Bn2.Forward(Conv2.Forward(Ops.Relu(Bn1.Forward(Conv1.Forward(x)))));
        var skip = Downsample is null ? x : Downsample.Forward(x);
        return scope.Keep(Ops.Relu(Ops.Add(y, skip)));
    }
}

/// <summary>
/// torchvision's Bottleneck (ResNet-50, stride on the 3x3): conv1 1x1 -> inner, conv2 3x3 (stride),
/// conv3 1x1 -> 4 x inner, each with batch norm, plus the identity or "downsample", relu.
/// </summary>
public sealed class Bottleneck2d : Module
{
    public Bottleneck2d(int inChannels, int inner, int stride, RandomSource rng, Device? device = null) : base(device)
    {
        int outChannels = 4 * inner;
        Conv1 = RegisterModule("conv1", new Conv2d(inChannels, inner, 1, rng, bias: false, device: device));
        Bn1 = RegisterModule("bn1", new BatchNorm2d(inner, device: device));
        Conv2 = RegisterModule("conv2", new Conv2d(inner, inner, 3, rng, stride: [stride], padding: [1], bias: false, device: device));
        Bn2 = RegisterModule("bn2", new BatchNorm2d(inner, device: device));
        Conv3 = RegisterModule("conv3", new Conv2d(inner, outChannels, 1, rng, bias: false, device: device));
        Bn3 = RegisterModule("bn3", new BatchNorm2d(outChannels, device: device));
        if (stride != 1 || inChannels != outChannels)
            Downsample = RegisterModule("downsample", new Sequential(
                new Conv2d(inChannels, outChannels, 1, rng, stride: [stride], bias: false, device: device), new BatchNorm2d(outChannels, device: device)));
    }

    public Conv2d Conv1 { get; }
    public BatchNorm2d Bn1 { get; }
    public Conv2d Conv2 { get; }
    public BatchNorm2d Bn2 { get; }
    public Conv2d Conv3 { get; }
    public BatchNorm2d Bn3 { get; }
    public Sequential? Downsample { get; }

    public override Tensor Forward(Tensor x)
    {
        using var scope = TensorScope.Begin();
        var y = Ops.Relu(Bn1.Forward(Conv1.Forward(x)));
        y = Ops.Relu(Bn2.Forward(Conv2.Forward(y)));
        y = Bn3.Forward(Conv3.Forward(y));
        var skip = Downsample is null ? x : Downsample.Forward(x);
        return scope.Keep(Ops.Relu(Ops.Add(y, skip)));
    }
}

/// <summary>The ResNet stem: conv1 (k x k, stride, no bias), bn1, relu, and optionally a 3x3 stride-2 max pool.</summary>
public sealed class ResNetStem : Module
{
    public ResNetStem(int inChannels, int width, int kernel, int stride, bool pool, RandomSource rng, Device? device = null) : base(device)
    {
        Conv1 = RegisterModule("conv1", new Conv2d(inChannels, width, kernel, rng, stride: [stride], padding: [kernel / 2], bias: false, device: device));
        Bn1 = RegisterModule("bn1", new BatchNorm2d(width, device: device));
        Pool = pool;
    }

    public Conv2d Conv1 { get; }
    public BatchNorm2d Bn1 { get; }
    public bool Pool { get; }

    public override Tensor Forward(Tensor x)
    {
        using var scope = TensorScope.Begin();
        var y = Ops.Relu(Bn1.Forward(Conv1.Forward(x)));
        return scope.Keep(Pool ? Ops.MaxPool2d(y, [3, 3], [2, 2], [1, 1]) : y);
    }
}
