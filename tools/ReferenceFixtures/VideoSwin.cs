using System.Text.Json.Nodes;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Sbp.Tools.ReferenceFixtures;

/// <summary>
/// Video Swin Transformer: SwinTransformer3D backbone (patch_norm, qkv_bias, no dropout / drop path) + I3DHead
/// (average pool, fc_cls, dropout 0), after mmaction/models/backbones/swin_transformer.py and
/// mmaction/models/heads/i3d_head.py of SwinTransformer/Video-Swin-Transformer. LayerNorm eps 1e-5.
/// </summary>
internal sealed class VideoSwin(int embedDim, int[] depths, int[] heads, long[] patch, long[] window, int mlpRatio,
    int numClasses, long[] input) : IReferenceModel
{
    const double Eps = 1e-5;

    public string Family => "video-swin";

    public string Source =>
        "https://github.com/SwinTransformer/Video-Swin-Transformer/blob/db018fb8896251711791386bbd2127562fd8d6a6/"
        + "mmaction/models/backbones/swin_transformer.py (SwinTransformer3D) + mmaction/models/heads/i3d_head.py (I3DHead)";

    public JsonObject Config => new()
    {
        ["embed_dim"] = embedDim,
        ["depths"] = Json.Array(depths),
        ["heads"] = Json.Array(heads),
        ["patch"] = Json.Array(patch),
        ["window"] = Json.Array(window),
        ["mlp_ratio"] = mlpRatio,
        ["num_classes"] = numClasses,
        ["input"] = Json.Array(input),
    };

    public bool HasBatchNorm => false;
    public long[] InputShape => input;
    public int NumClasses => numClasses;

    public IReadOnlyList<string> ProbeParameters =>
    [
        "backbone.patch_embed.proj.weight",
        $"backbone.layers.{depths.Length - 1}.blocks.{depths[^1] - 1}.attn.relative_position_bias_table",
    ];

    long Dim(int layer) => embedDim * (1L << layer);

    /// <summary>shift_size of BasicLayer: window // 2, used by the odd blocks.</summary>
    long[] LayerShift => window.Select(w => w / 2).ToArray();

    public void Declare(ParamStore p)
    {
        Nn.DeclareConv(p, "backbone.patch_embed.proj", input[1], embedDim, patch, bias: true);   // nn.Conv3d default bias
        Nn.DeclareLayerNorm(p, "backbone.patch_embed.norm", embedDim);
        for (int i = 0; i < depths.Length; i++)
        {
            long dim = Dim(i);
            for (int j = 0; j < depths[i]; j++)
            {
                string b = $"backbone.layers.{i}.blocks.{j}";
                Nn.DeclareLayerNorm(p, b + ".norm1", dim);
                long tableRows = (2 * window[0] - 1) * (2 * window[1] - 1) * (2 * window[2] - 1);
                p.Add(b + ".attn.relative_position_bias_table", EntryKind.BiasTable, tableRows, heads[i]);
                p.Add(b + ".attn.relative_position_index", EntryKind.Index, SwinWindows.RelativePositionIndex(window));
                Nn.DeclareLinear(p, b + ".attn.qkv", dim, 3 * dim);
                Nn.DeclareLinear(p, b + ".attn.proj", dim, dim);
                Nn.DeclareLayerNorm(p, b + ".norm2", dim);
                Nn.DeclareLinear(p, b + ".mlp.fc1", dim, dim * mlpRatio);
                Nn.DeclareLinear(p, b + ".mlp.fc2", dim * mlpRatio, dim);
            }
            if (i < depths.Length - 1)
            {
                // PatchMerging registers reduction before norm.
                Nn.DeclareLinear(p, $"backbone.layers.{i}.downsample.reduction", 4 * dim, 2 * dim, bias: false);
                Nn.DeclareLayerNorm(p, $"backbone.layers.{i}.downsample.norm", 4 * dim);
            }
        }
        Nn.DeclareLayerNorm(p, "backbone.norm", Dim(depths.Length - 1));
        Nn.DeclareLinear(p, "cls_head.fc_cls", Dim(depths.Length - 1), numClasses);
    }

    public void SelfCheck(ParamStore p)
    {
        int count = 0;
        foreach (var e in p.Entries.Where(e => e.Name.EndsWith(".relative_position_index", StringComparison.Ordinal)))
        {
            SwinWindows.CheckRelativePositionIndex(e.Value, window, e.Name);
            count++;
        }
        Console.WriteLine($"  relative_position_index == formula for window [{string.Join(",", window)}] in {count} blocks");
    }

    public Tensor Forward(ParamStore p, Tensor x, bool train)
    {
        x = PatchEmbed(p, x);
        for (int i = 0; i < depths.Length; i++) x = BasicLayer(p, i, x.contiguous());
        x = x.permute(0, 2, 3, 4, 1);                       // n c d h w -> n d h w c
        x = Nn.LayerNorm(p, "backbone.norm", x, Eps);
        x = x.permute(0, 4, 1, 2, 3);                       // back to n c d h w
        // I3DHead: AdaptiveAvgPool3d(1), (dropout 0), view, fc_cls.
        x = x.mean([2, 3, 4], keepdim: true);
        x = x.view(x.shape[0], -1);
        return Nn.Linear(p, "cls_head.fc_cls", x);
    }

    /// <summary>PatchEmbed3D: pad W, H, D at the end to multiples of the patch, Conv3d, LayerNorm over channels.</summary>
    Tensor PatchEmbed(ParamStore p, Tensor x)
    {
        long d = x.shape[2], h = x.shape[3], w = x.shape[4];
        if (w % patch[2] != 0) x = F.pad(x, [0, patch[2] - w % patch[2]]);
        if (h % patch[1] != 0) x = F.pad(x, [0, 0, 0, patch[1] - h % patch[1]]);
        if (d % patch[0] != 0) x = F.pad(x, [0, 0, 0, 0, 0, patch[0] - d % patch[0]]);
        x = Nn.Conv3d(p, "backbone.patch_embed.proj", x, patch, [0, 0, 0]);
        long dd = x.shape[2], wh = x.shape[3], ww = x.shape[4];
        x = x.flatten(2).transpose(1, 2);
        x = Nn.LayerNorm(p, "backbone.patch_embed.norm", x, Eps);
        return x.transpose(1, 2).view(-1, embedDim, dd, wh, ww);
    }

    /// <summary>BasicLayer: the mask from the layer's window/shift on the padded sizes, the blocks, PatchMerging.</summary>
    Tensor BasicLayer(ParamStore p, int i, Tensor x)
    {
        long b = x.shape[0], d = x.shape[2], h = x.shape[3], w = x.shape[4];
        var (ws, ss) = SwinWindows.GetWindowSize([d, h, w], window, LayerShift);
        x = x.permute(0, 2, 3, 4, 1);                       // b c d h w -> b d h w c
        long dp = CeilTo(d, ws[0]), hp = CeilTo(h, ws[1]), wp = CeilTo(w, ws[2]);
        var mask = SwinWindows.ComputeMask(dp, hp, wp, ws, ss, x.dtype);
        for (int j = 0; j < depths[i]; j++)
        {
            var blockShift = j % 2 == 0 ? new long[] { 0, 0, 0 } : LayerShift;
            x = Block(p, $"backbone.layers.{i}.blocks.{j}", heads[i], blockShift, x, mask);
        }
        x = x.reshape(b, d, h, w, -1);
        if (i < depths.Length - 1) x = PatchMerging(p, $"backbone.layers.{i}.downsample", x);
        return x.permute(0, 4, 1, 2, 3);                    // b d h w c -> b c d h w
    }

    static long CeilTo(long n, long m) => (n + m - 1) / m * m;

    /// <summary>SwinTransformerBlock3D: x + part1(x), then + mlp(norm2(.)).</summary>
    Tensor Block(ParamStore p, string name, int numHeads, long[] shift, Tensor x, Tensor mask)
    {
        var shortcut = x;
        x = shortcut + BlockPart1(p, name, numHeads, shift, x, mask);
        var y = Nn.LayerNorm(p, name + ".norm2", x, Eps);
        y = Nn.Linear(p, name + ".mlp.fc2", Nn.Gelu(Nn.Linear(p, name + ".mlp.fc1", y)));
        return x + y;
    }

    /// <summary>forward_part1: norm1, pad at the end, cyclic shift, windows, attention, reverse, unshift, crop.</summary>
    Tensor BlockPart1(ParamStore p, string name, int numHeads, long[] blockShift, Tensor x, Tensor mask)
    {
        long b = x.shape[0], d = x.shape[1], h = x.shape[2], w = x.shape[3], c = x.shape[4];
        var (ws, ss) = SwinWindows.GetWindowSize([d, h, w], window, blockShift);
        x = Nn.LayerNorm(p, name + ".norm1", x, Eps);
        long padD1 = (ws[0] - d % ws[0]) % ws[0];
        long padB = (ws[1] - h % ws[1]) % ws[1];
        long padR = (ws[2] - w % ws[2]) % ws[2];
        x = F.pad(x, [0, 0, 0, padR, 0, padB, 0, padD1]);
        long dp = x.shape[1], hp = x.shape[2], wp = x.shape[3];
        bool shifted = ss.Any(s => s > 0);
        var shiftedX = shifted ? roll(x, [-ss[0], -ss[1], -ss[2]], [1, 2, 3]) : x;
        var windows = SwinWindows.WindowPartition(shiftedX, ws);
        var attn = WindowAttention(p, name + ".attn", numHeads, windows, shifted ? mask : null);
        attn = attn.view([-1, ws[0], ws[1], ws[2], c]);
        shiftedX = SwinWindows.WindowReverse(attn, ws, b, dp, hp, wp);
        x = shifted ? roll(shiftedX, [ss[0], ss[1], ss[2]], [1, 2, 3]) : shiftedX;
        if (padD1 > 0 || padR > 0 || padB > 0)
            x = x.slice(1, 0, d, 1).slice(2, 0, h, 1).slice(3, 0, w, 1).contiguous();
        return x;
    }

    /// <summary>
    /// WindowAttention3D: q * head_dim^-0.5 @ k^T + bias_table[relative_position_index[:N, :N]] (+ mask per window),
    /// softmax, @ v, proj. The index is the full window's, sliced to the first N rows and columns, as the official
    /// code does even when get_window_size shrank the window.
    /// </summary>
    Tensor WindowAttention(ParamStore p, string name, int numHeads, Tensor x, Tensor? mask)
    {
        long bw = x.shape[0], n = x.shape[1], c = x.shape[2];
        double scale = Math.Pow(c / numHeads, -0.5);
        var qkv = Nn.Linear(p, name + ".qkv", x).reshape(bw, n, 3, numHeads, c / numHeads).permute(2, 0, 3, 1, 4);
        Tensor q = qkv[0], k = qkv[1], v = qkv[2];
        q = q * scale;
        var attn = q.matmul(k.transpose(-2, -1));
        var index = p[name + ".relative_position_index"].slice(0, 0, n, 1).slice(1, 0, n, 1).reshape(-1);
        var bias = p[name + ".relative_position_bias_table"].index_select(0, index).reshape(n, n, -1);
        attn = attn + bias.permute(2, 0, 1).contiguous().unsqueeze(0);
        if (mask is not null)
        {
            long nW = mask.shape[0];
            attn = attn.view(bw / nW, nW, numHeads, n, n) + mask.unsqueeze(1).unsqueeze(0);
            attn = attn.view(-1, numHeads, n, n);
        }
        attn = attn.softmax(-1);
        x = attn.matmul(v).transpose(1, 2).reshape(bw, n, c);
        return Nn.Linear(p, name + ".proj", x);
    }

    /// <summary>PatchMerging: pad H/W to even, gather the 2x2 neighbours (order x0, x1, x2, x3), LayerNorm(4C), reduction.</summary>
    static Tensor PatchMerging(ParamStore p, string name, Tensor x)
    {
        long h = x.shape[2], w = x.shape[3];
        if (h % 2 == 1 || w % 2 == 1) x = F.pad(x, [0, 0, 0, w % 2, 0, h % 2]);
        long hp = x.shape[2], wp = x.shape[3];
        var x0 = x.slice(2, 0, hp, 2).slice(3, 0, wp, 2);
        var x1 = x.slice(2, 1, hp, 2).slice(3, 0, wp, 2);
        var x2 = x.slice(2, 0, hp, 2).slice(3, 1, wp, 2);
        var x3 = x.slice(2, 1, hp, 2).slice(3, 1, wp, 2);
        x = cat([x0, x1, x2, x3], -1);
        x = Nn.LayerNorm(p, name + ".norm", x, Eps);
        return Nn.Linear(p, name + ".reduction", x);
    }
}
