using Sbp.Nn;
using Sbp.Rng;
using Sbp.Tensors;

namespace Sbp.Models.Architectures;

/// <summary>
/// torchvision's video BasicBlock with Conv2Plus1D: relu(conv2(conv1(x)) + skip(x)), conv1 = "conv1"
/// (Conv2Plus1D with the stride, BN, ReLU), conv2 = "conv2" (Conv2Plus1D, BN), skip = identity or "downsample"
/// (1x1x1 Conv3d with the stride on every axis, BN). One middle width for both (torchvision's rule). The parts are
/// <see cref="Sequential"/>s laid out as torchvision's nn.Sequential, ReLU included, so every state-dict name is its.
/// </summary>
public sealed class R2Plus1dBlock : Module
{
    public R2Plus1dBlock(int inPlanes, int planes, int stride, RandomSource rng, Device? device = null) : base(device)
    {
        int mid = VideoResNetConfig.MidPlanes(inPlanes, planes);
        Conv1 = RegisterModule("conv1", new Sequential(device, Conv2Plus1d(inPlanes, planes, mid, stride, rng, device), new BatchNorm3d(planes, device: device), new Relu(device)));
        Conv2 = RegisterModule("conv2", new Sequential(device, Conv2Plus1d(planes, planes, mid, 1, rng, device), new BatchNorm3d(planes, device: device)));
        if (stride != 1 || inPlanes != planes)
            Downsample = RegisterModule("downsample", new Sequential(device,
                new Conv3d(inPlanes, planes, [1, 1, 1], rng, stride: [stride, stride, stride], bias: false, device: device), new BatchNorm3d(planes, device: device)));
    }

    public Sequential Conv1 { get; }
    public Sequential Conv2 { get; }
    public Sequential? Downsample { get; }

    /// <summary>
    /// torchvision's Conv2Plus1D: "0" Conv3d(in, mid, 1x3x3, stride (1, s, s)), "1" BatchNorm3d(mid), "2" ReLU,
    /// "3" Conv3d(mid, out, 3x1x1, stride (s, 1, 1)), the convolutions without bias.
    /// </summary>
    public static Sequential Conv2Plus1d(int inPlanes, int outPlanes, int midPlanes, int stride, RandomSource rng, Device? device = null) => new(device,
        new Conv3d(inPlanes, midPlanes, [1, 3, 3], rng, stride: [1, stride, stride], padding: [0, 1, 1], bias: false, device: device),
        new BatchNorm3d(midPlanes, device: device), new Relu(device),
        new Conv3d(midPlanes, outPlanes, [3, 1, 1], rng, stride: [stride, 1, 1], padding: [1, 0, 0], bias: false, device: device));

    /// <summary>torchvision's R2Plus1dStem: Conv3d(3, mid, 1x7x7, stride (1, 2, 2)), BN, ReLU, Conv3d(mid, width, 3x1x1), BN, ReLU; no biases.</summary>
    public static Sequential Stem(int inChannels, int mid, int width, RandomSource rng, Device? device = null) => new(device,
        new Conv3d(inChannels, mid, [1, 7, 7], rng, stride: [1, 2, 2], padding: [0, 3, 3], bias: false, device: device),
        new BatchNorm3d(mid, device: device), new Relu(device),
        new Conv3d(mid, width, [3, 1, 1], rng, padding: [1, 0, 0], bias: false, device: device),
        new BatchNorm3d(width, device: device), new Relu(device));

    public override Tensor Forward(Tensor x)
    {
        using var scope = TensorScope.Begin();
        var y = Conv1.Forward(x).Consume(Conv2.Forward);
        return scope.Keep(BasicBlock2d.AddSkip(y, x, Downsample));
    }
}
