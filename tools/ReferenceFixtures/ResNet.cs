using System.Text.Json.Nodes;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Sbp.Tools.ReferenceFixtures;

/// <summary>
/// torchvision ResNet (torchvision/models/resnet.py) with BasicBlock or Bottleneck (v1.5: the stride on the 3x3 conv)
/// and configurable widths: <c>widths</c> are the stage output widths (planes * expansion), a bottleneck's inner
/// width is width / 4 (groups 1, base_width 64). Stem conv 7x7/2, BN, ReLU, maxpool 3x3/2; avgpool; fc.
/// </summary>
internal sealed class ResNet(bool bottleneck, int stemWidth, int[] widths, int[] blocks, int numClasses, long[] input)
    : IReferenceModel
{
    public string Family => "resnet";

    public string Source =>
        "https://github.com/pytorch/vision/blob/main/torchvision/models/resnet.py (ResNet, "
        + (bottleneck ? "Bottleneck" : "BasicBlock") + "; widths scaled down)";

    public JsonObject Config => new()
    {
        ["block"] = bottleneck ? "bottleneck" : "basic",
        ["stem_width"] = stemWidth,
        ["widths"] = Json.Array(widths),
        ["blocks"] = Json.Array(blocks),
        ["num_classes"] = numClasses,
        ["input"] = Json.Array(input),
    };

    public bool HasBatchNorm => true;
    public long[] InputShape => input;
    public int NumClasses => numClasses;
    public IReadOnlyList<string> ProbeParameters => ["conv1.weight", "bn1.weight", "layer4.0.conv1.weight"];

    static long Stride(int stage) => stage == 0 ? 1 : 2;

    public void Declare(ParamStore p)
    {
        Nn.DeclareConv(p, "conv1", input[1], stemWidth, [7, 7], bias: false);
        Nn.DeclareBatchNorm(p, "bn1", stemWidth);
        long inplanes = stemWidth;
        for (int s = 0; s < 4; s++)
        {
            long outWidth = widths[s];
            for (int j = 0; j < blocks[s]; j++)
            {
                string b = $"layer{s + 1}.{j}";
                if (bottleneck)
                {
                    long inner = outWidth / 4;
                    Nn.DeclareConv(p, b + ".conv1", inplanes, inner, [1, 1], bias: false);
                    Nn.DeclareBatchNorm(p, b + ".bn1", inner);
                    Nn.DeclareConv(p, b + ".conv2", inner, inner, [3, 3], bias: false);
                    Nn.DeclareBatchNorm(p, b + ".bn2", inner);
                    Nn.DeclareConv(p, b + ".conv3", inner, outWidth, [1, 1], bias: false);
                    Nn.DeclareBatchNorm(p, b + ".bn3", outWidth);
                }
                else
                {
                    Nn.DeclareConv(p, b + ".conv1", inplanes, outWidth, [3, 3], bias: false);
                    Nn.DeclareBatchNorm(p, b + ".bn1", outWidth);
                    Nn.DeclareConv(p, b + ".conv2", outWidth, outWidth, [3, 3], bias: false);
                    Nn.DeclareBatchNorm(p, b + ".bn2", outWidth);
                }
                // _make_layer: a downsample on the first block when the stride or the width changes.
                if (j == 0 && (Stride(s) != 1 || inplanes != outWidth))
                {
                    Nn.DeclareConv(p, b + ".downsample.0", inplanes, outWidth, [1, 1], bias: false);
                    Nn.DeclareBatchNorm(p, b + ".downsample.1", outWidth);
                }
                inplanes = outWidth;
            }
        }
        Nn.DeclareLinear(p, "fc", inplanes, numClasses);
    }

    public void SelfCheck(ParamStore p) =>
        Console.WriteLine($"  {p.Entries.Count} state-dict entries ({(bottleneck ? "bottleneck" : "basic")} blocks)");

    public Tensor Forward(ParamStore p, Tensor x, bool train)
    {
        x = Nn.Conv2d(p, "conv1", x, 2, 3);
        x = F.relu(Nn.BatchNorm(p, "bn1", x, train));
        x = F.max_pool2d(x, [3, 3], [2, 2], [1, 1]);
        for (int s = 0; s < 4; s++)
            for (int j = 0; j < blocks[s]; j++)
            {
                long stride = j == 0 ? Stride(s) : 1;
                x = bottleneck ? Bottleneck(p, $"layer{s + 1}.{j}", x, stride, train) : Basic(p, $"layer{s + 1}.{j}", x, stride, train);
            }
        x = F.adaptive_avg_pool2d(x, [1, 1]);
        x = x.reshape(x.shape[0], -1);
        return Nn.Linear(p, "fc", x);
    }

    static Tensor Basic(ParamStore p, string b, Tensor x, long stride, bool train)
    {
        var identity = x;
        var o = F.relu(Nn.BatchNorm(p, b + ".bn1", Nn.Conv2d(p, b + ".conv1", x, stride, 1), train));
        o = Nn.BatchNorm(p, b + ".bn2", Nn.Conv2d(p, b + ".conv2", o, 1, 1), train);
        if (p.Contains(b + ".downsample.0.weight")) identity = Downsample(p, b, x, stride, train);
        return F.relu(o + identity);
    }

    static Tensor Bottleneck(ParamStore p, string b, Tensor x, long stride, bool train)
    {
        var identity = x;
        var o = F.relu(Nn.BatchNorm(p, b + ".bn1", Nn.Conv2d(p, b + ".conv1", x, 1, 0), train));
        o = F.relu(Nn.BatchNorm(p, b + ".bn2", Nn.Conv2d(p, b + ".conv2", o, stride, 1), train));
        o = Nn.BatchNorm(p, b + ".bn3", Nn.Conv2d(p, b + ".conv3", o, 1, 0), train);
        if (p.Contains(b + ".downsample.0.weight")) identity = Downsample(p, b, x, stride, train);
        return F.relu(o + identity);
    }

    /// <summary>downsample = Sequential(conv1x1(inplanes, planes * expansion, stride), BN).</summary>
    static Tensor Downsample(ParamStore p, string b, Tensor x, long stride, bool train) =>
        Nn.BatchNorm(p, b + ".downsample.1", Nn.Conv2d(p, b + ".downsample.0", x, stride, 0), train);
}
