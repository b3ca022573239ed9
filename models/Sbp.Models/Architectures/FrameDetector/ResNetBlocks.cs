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

    /// <summary>relu(y + skip(x)), skip = identity or downsample; y and the skip are freed once read.</summary>
    internal static Tensor AddSkip(Tensor y, Tensor x, Module? downsample)
    {
        var skip = downsample is null ? x : downsample.Forward(x);
        var sum = y.Consume(h => Ops.Add(h, skip));
        if (!ReferenceEquals(skip, x)) skip.Dispose();
        return sum.Consume(Ops.Relu);
    }

    public override Tensor Forward(Tensor x)
    {
        // Each intermediate is freed once the next op has read it (Consume): at most two full-size
        // tensors of the block are live at a time, which is what lets SBP's compact caching show in the peak.
        using var scope = TensorScope.Begin();
        var y = Conv1.Forward(x).Consume(Bn1.Forward).Consume(Ops.Relu).Consume(Conv2.Forward).Consume(Bn2.Forward);
        return scope.Keep(AddSkip(y, x, Downsample));
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
        var y = Conv1.Forward(x).Consume(Bn1.Forward).Consume(Ops.Relu)
            .Consume(Conv2.Forward).Consume(Bn2.Forward).Consume(Ops.Relu)
            .Consume(Conv3.Forward).Consume(Bn3.Forward);
        return scope.Keep(BasicBlock2d.AddSkip(y, x, Downsample));
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
        var y = Conv1.Forward(x).Consume(Bn1.Forward).Consume(Ops.Relu);
        return scope.Keep(Pool ? y.Consume(h => Ops.MaxPool2d(h, [3, 3], [2, 2], [1, 1])) : y);
    }
}
