using System.Text.Json.Nodes;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Sbp.Tools.ReferenceFixtures;

/// <summary>
/// torchvision R(2+1)D (torchvision/models/video/resnet.py: VideoResNet, BasicBlock, Conv2Plus1D, R2Plus1dStem) with
/// configurable widths. Each (2+1)D conv is Conv3d (1,3,3) stride (1,s,s) -> BN(mid) -> ReLU -> Conv3d (3,1,1) stride
/// (s,1,1); a block's conv1 and conv2 share midplanes = (in*planes*27) // (in*9 + 3*planes) computed from the block's
/// (inplanes, planes), as torchvision does.
/// </summary>
internal sealed class R2Plus1d(int stemMid, int stemWidth, int[] widths, int[] blocks, int numClasses, long[] input)
    : IReferenceModel
{
    public string Family => "r2plus1d";

    public string Source =>
        "https://github.com/pytorch/vision/blob/main/torchvision/models/video/resnet.py "
        + "(VideoResNet + BasicBlock + Conv2Plus1D + R2Plus1dStem; widths scaled down)";

    public JsonObject Config => new()
    {
        ["stem_mid"] = stemMid,
        ["stem_width"] = stemWidth,
        ["widths"] = Json.Array(widths),
        ["blocks"] = Json.Array(blocks),
        ["num_classes"] = numClasses,
        ["input"] = Json.Array(input),
    };

    public bool HasBatchNorm => true;
    public long[] InputShape => input;
    public int NumClasses => numClasses;
    public IReadOnlyList<string> ProbeParameters => ["stem.0.weight", "stem.1.weight", "layer2.0.conv1.0.3.weight"];

    static long Stride(int stage) => stage == 0 ? 1 : 2;

    /// <summary>BasicBlock's midplanes (integer division, as in Python's //).</summary>
    public static long MidPlanes(long inplanes, long planes) => inplanes * planes * 3 * 3 * 3 / (inplanes * 3 * 3 + 3 * planes);

    public void Declare(ParamStore p)
    {
        Nn.DeclareConv(p, "stem.0", input[1], stemMid, [1, 7, 7], bias: false);
        Nn.DeclareBatchNorm(p, "stem.1", stemMid);
        Nn.DeclareConv(p, "stem.3", stemMid, stemWidth, [3, 1, 1], bias: false);
        Nn.DeclareBatchNorm(p, "stem.4", stemWidth);
        long inplanes = stemWidth;
        for (int s = 0; s < 4; s++)
        {
            long planes = widths[s];
            for (int j = 0; j < blocks[s]; j++)
            {
                string b = $"layer{s + 1}.{j}";
                long mid = MidPlanes(inplanes, planes);
                DeclareConv2Plus1D(p, b + ".conv1.0", inplanes, planes, mid);
                Nn.DeclareBatchNorm(p, b + ".conv1.1", planes);
                DeclareConv2Plus1D(p, b + ".conv2.0", planes, planes, mid);
                Nn.DeclareBatchNorm(p, b + ".conv2.1", planes);
                if (j == 0 && (Stride(s) != 1 || inplanes != planes))
                {
                    Nn.DeclareConv(p, b + ".downsample.0", inplanes, planes, [1, 1, 1], bias: false);
                    Nn.DeclareBatchNorm(p, b + ".downsample.1", planes);
                }
                inplanes = planes;
            }
        }
        Nn.DeclareLinear(p, "fc", inplanes, numClasses);
    }

    static void DeclareConv2Plus1D(ParamStore p, string prefix, long inPlanes, long outPlanes, long mid)
    {
        Nn.DeclareConv(p, prefix + ".0", inPlanes, mid, [1, 3, 3], bias: false);
        Nn.DeclareBatchNorm(p, prefix + ".1", mid);
        Nn.DeclareConv(p, prefix + ".3", mid, outPlanes, [3, 1, 1], bias: false);
    }

    public void SelfCheck(ParamStore p)
    {
        // midplanes of torchvision's r2plus1d_18 first block (64 -> 64) is 144; of its layer2.0 (64 -> 128), 230.
        if (MidPlanes(64, 64) != 144 || MidPlanes(64, 128) != 230) throw new InvalidOperationException("midplanes formula");
        var mids = p.Entries.Where(e => e.Name.EndsWith(".conv1.0.0.weight", StringComparison.Ordinal))
            .Select(e => $"{e.Name.Split('.')[0]}.{e.Name.Split('.')[1]}:{e.Value.shape[0]}");
        Console.WriteLine($"  midplanes {string.Join(" ", mids)}; {p.Entries.Count} state-dict entries");
    }

    public Tensor Forward(ParamStore p, Tensor x, bool train)
    {
        x = Nn.Conv3d(p, "stem.0", x, [1, 2, 2], [0, 3, 3]);
        x = F.relu(Nn.BatchNorm(p, "stem.1", x, train));
        x = Nn.Conv3d(p, "stem.3", x, [1, 1, 1], [1, 0, 0]);
        x = F.relu(Nn.BatchNorm(p, "stem.4", x, train));
        for (int s = 0; s < 4; s++)
            for (int j = 0; j < blocks[s]; j++)
                x = Block(p, $"layer{s + 1}.{j}", x, j == 0 ? Stride(s) : 1, train);
        x = F.adaptive_avg_pool3d(x, [1, 1, 1]);
        x = x.flatten(1);
        return Nn.Linear(p, "fc", x);
    }

    static Tensor Block(ParamStore p, string b, Tensor x, long stride, bool train)
    {
        var residual = x;
        var o = F.relu(Nn.BatchNorm(p, b + ".conv1.1", Conv2Plus1D(p, b + ".conv1.0", x, stride, train), train));
        o = Nn.BatchNorm(p, b + ".conv2.1", Conv2Plus1D(p, b + ".conv2.0", o, 1, train), train);
        if (p.Contains(b + ".downsample.0.weight"))
            residual = Nn.BatchNorm(p, b + ".downsample.1", Nn.Conv3d(p, b + ".downsample.0", x, [stride, stride, stride], [0, 0, 0]), train);
        return F.relu(o + residual);
    }

    /// <summary>Conv2Plus1D (padding 1): spatial conv, BN, ReLU, temporal conv.</summary>
    static Tensor Conv2Plus1D(ParamStore p, string prefix, Tensor x, long stride, bool train)
    {
        x = Nn.Conv3d(p, prefix + ".0", x, [1, stride, stride], [0, 1, 1]);
        x = F.relu(Nn.BatchNorm(p, prefix + ".1", x, train));
        return Nn.Conv3d(p, prefix + ".3", x, [stride, 1, 1], [1, 0, 0]);
    }
}
