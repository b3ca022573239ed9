using System.Text.Json.Nodes;
using TorchSharp;
using static TorchSharp.torch;

namespace Sbp.Tools.ReferenceFixtures;

/// <summary>
/// VideoMAE for video classification with mean pooling, after HF transformers
/// src/transformers/models/videomae/modeling_videomae.py (VideoMAEForVideoClassification, use_mean_pooling=True,
/// qkv_bias=True, hidden_act "gelu", layer_norm_eps 1e-12, eager attention, no dropout).
/// </summary>
internal sealed class VideoMae(int hidden, int layers, int heads, int intermediate, int tubelet, int patch, int frames,
    int image, int numClasses, long[] input) : IReferenceModel
{
    /// <summary>config.layer_norm_eps, used by layernorm_before / layernorm_after.</summary>
    const double LayerNormEps = 1e-12;

    /// <summary>fc_norm is nn.LayerNorm(hidden_size) without an eps argument, so PyTorch's default 1e-5.</summary>
    const double FcNormEps = 1e-5;

    public string Family => "videomae";

    public string Source =>
        "https://github.com/huggingface/transformers/blob/015e68769f9823df27f5f7372dc155277e6ff7e6/"
        + "src/transformers/models/videomae/modeling_videomae.py (VideoMAEForVideoClassification, use_mean_pooling)";

    public JsonObject Config => new()
    {
        ["hidden"] = hidden,
        ["layers"] = layers,
        ["heads"] = heads,
        ["intermediate"] = intermediate,
        ["tubelet"] = tubelet,
        ["patch"] = patch,
        ["frames"] = frames,
        ["image"] = image,
        ["num_classes"] = numClasses,
        ["input"] = Json.Array(input),
    };

    public bool HasBatchNorm => false;
    public long[] InputShape => input;
    public int NumClasses => numClasses;

    public IReadOnlyList<string> ProbeParameters =>
    [
        "videomae.embeddings.patch_embeddings.projection.weight",
        "videomae.encoder.layer.0.attention.attention.q_bias",
        "videomae.encoder.layer.0.attention.attention.v_bias",
    ];

    /// <summary>num_patches = (frames / tubelet) * (image / patch)^2, the length of the sinusoid table.</summary>
    int NumPatches => frames / tubelet * (image / patch) * (image / patch);

    public void Declare(ParamStore p)
    {
        Nn.DeclareConv(p, "videomae.embeddings.patch_embeddings.projection", input[1], hidden, [tubelet, patch, patch], bias: true);
        for (int i = 0; i < layers; i++)
        {
            string l = $"videomae.encoder.layer.{i}";
            // VideoMAESelfAttention: its own parameters (q_bias, v_bias) come before its child Linears in state_dict().
            p.Add(l + ".attention.attention.q_bias", EntryKind.QvBias, hidden);
            p.Add(l + ".attention.attention.v_bias", EntryKind.QvBias, hidden);
            Nn.DeclareLinear(p, l + ".attention.attention.query", hidden, hidden, bias: false);
            Nn.DeclareLinear(p, l + ".attention.attention.key", hidden, hidden, bias: false);
            Nn.DeclareLinear(p, l + ".attention.attention.value", hidden, hidden, bias: false);
            Nn.DeclareLinear(p, l + ".attention.output.dense", hidden, hidden);
            Nn.DeclareLinear(p, l + ".intermediate.dense", hidden, intermediate);
            Nn.DeclareLinear(p, l + ".output.dense", intermediate, hidden);
            Nn.DeclareLayerNorm(p, l + ".layernorm_before", hidden);
            Nn.DeclareLayerNorm(p, l + ".layernorm_after", hidden);
        }
        Nn.DeclareLayerNorm(p, "fc_norm", hidden);
        Nn.DeclareLinear(p, "classifier", hidden, numClasses);
    }

    public void SelfCheck(ParamStore p)
    {
        var table = SinusoidTable(NumPatches, hidden);
        // Spot values of get_sinusoid_encoding_table: row 0 is sin(0)=0 / cos(0)=1 alternating; row 1, column 0 is sin(1).
        var t = table.data<float>().ToArray();
        if (t[0] != 0f || t[1] != 1f || Math.Abs(t[hidden] - (float)Math.Sin(1.0)) > 1e-7)
            throw new InvalidOperationException("sinusoid table spot check failed");
        Console.WriteLine($"  sinusoid position table {NumPatches}x{hidden} (not in the state dict) spot-checked");
    }

    /// <summary>
    /// get_sinusoid_encoding_table: angle(pos, j) = pos / 10000^(2*(j//2)/d) in float64 (numpy), sin on even j,
    /// cos on odd j, then converted to float32 as torch.FloatTensor does. Shape (1, n, d).
    /// </summary>
    static Tensor SinusoidTable(int n, int d)
    {
        var table = new float[n * d];
        for (int pos = 0; pos < n; pos++)
            for (int j = 0; j < d; j++)
            {
                double angle = pos / Math.Pow(10000, 2.0 * (j / 2) / d);
                table[pos * d + j] = (float)(j % 2 == 0 ? Math.Sin(angle) : Math.Cos(angle));
            }
        return tensor(table, [1, n, d], ScalarType.Float32);
    }

    public Tensor Forward(ParamStore p, Tensor x, bool train)
    {
        // The fixture input is [B, C, T, H, W]; HF takes pixel_values [B, T, C, H, W] and permutes them back to
        // [B, C, T, H, W] for the Conv3d, so the round trip is written out to keep the correspondence visible.
        var pixelValues = x.permute(0, 2, 1, 3, 4);
        var h = Nn.Conv3d(p, "videomae.embeddings.patch_embeddings.projection", pixelValues.permute(0, 2, 1, 3, 4),
            [tubelet, patch, patch], [0, 0, 0]);
        h = h.flatten(2).transpose(1, 2);                                     // B, N, hidden (tokens t-major, then h, w)
        h = h + SinusoidTable(NumPatches, hidden).to_type(h.dtype);
        for (int i = 0; i < layers; i++) h = Layer(p, $"videomae.encoder.layer.{i}", h);
        // use_mean_pooling: no videomae.layernorm; mean over tokens, fc_norm, classifier.
        var pooled = Nn.LayerNorm(p, "fc_norm", h.mean([1]), FcNormEps);
        return Nn.Linear(p, "classifier", pooled);
    }

    /// <summary>VideoMAELayer: pre-norm attention with residual, then layernorm_after, MLP, residual.</summary>
    Tensor Layer(ParamStore p, string l, Tensor h)
    {
        var norm = Nn.LayerNorm(p, l + ".layernorm_before", h, LayerNormEps);
        var attention = Nn.Linear(p, l + ".attention.output.dense", SelfAttention(p, l + ".attention.attention", norm));
        h = attention + h;
        var y = Nn.LayerNorm(p, l + ".layernorm_after", h, LayerNormEps);
        y = Nn.Gelu(Nn.Linear(p, l + ".intermediate.dense", y));
        return Nn.Linear(p, l + ".output.dense", y) + h;
    }

    /// <summary>
    /// VideoMAESelfAttention: key bias is zeros (only q_bias and v_bias are learned); eager attention computes
    /// (q @ k^T) * head_dim^-0.5, softmax, @ v.
    /// </summary>
    Tensor SelfAttention(ParamStore p, string a, Tensor h)
    {
        long b = h.shape[0], n = h.shape[1];
        long headDim = hidden / heads;
        var qBias = p[a + ".q_bias"];
        var kBias = zeros_like(p[a + ".v_bias"]);
        var keys = nn.functional.linear(h, p[a + ".key.weight"], kBias);
        var values = nn.functional.linear(h, p[a + ".value.weight"], p[a + ".v_bias"]);
        var queries = nn.functional.linear(h, p[a + ".query.weight"], qBias);
        var k = keys.view(b, -1, heads, headDim).transpose(1, 2);
        var v = values.view(b, -1, heads, headDim).transpose(1, 2);
        var q = queries.view(b, -1, heads, headDim).transpose(1, 2);
        var weights = q.matmul(k.transpose(-1, -2)) * Math.Pow(headDim, -0.5);
        weights = weights.softmax(-1);
        var context = weights.matmul(v).transpose(1, 2).contiguous();
        return context.reshape(b, n, hidden);
    }
}
