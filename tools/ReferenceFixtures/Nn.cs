using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Sbp.Tools.ReferenceFixtures;

/// <summary>
/// The PyTorch layers the models use, as functions over a <see cref="ParamStore"/> prefix (declare + apply), with
/// the entry names PyTorch gives them (weight, bias, running_mean, running_var).
/// </summary>
internal static class Nn
{
    // ----- declarations (the order is the order nn.Module.state_dict() lists them) -----

    public static void DeclareLinear(ParamStore p, string prefix, long inFeatures, long outFeatures, bool bias = true)
    {
        p.Add(prefix + ".weight", EntryKind.Weight, outFeatures, inFeatures);
        if (bias) p.Add(prefix + ".bias", EntryKind.Bias, outFeatures);
    }

    public static void DeclareConv(ParamStore p, string prefix, long inChannels, long outChannels, long[] kernel, bool bias)
    {
        p.Add(prefix + ".weight", EntryKind.Weight, [outChannels, inChannels, .. kernel]);
        if (bias) p.Add(prefix + ".bias", EntryKind.Bias, outChannels);
    }

    public static void DeclareLayerNorm(ParamStore p, string prefix, long dim)
    {
        p.Add(prefix + ".weight", EntryKind.NormWeight, dim);
        p.Add(prefix + ".bias", EntryKind.NormBias, dim);
    }

    /// <summary>BatchNorm entries; num_batches_tracked is left out (the fixture format has no int64 and the tests ignore it).</summary>
    public static void DeclareBatchNorm(ParamStore p, string prefix, long channels)
    {
        p.Add(prefix + ".weight", EntryKind.NormWeight, channels);
        p.Add(prefix + ".bias", EntryKind.NormBias, channels);
        p.Add(prefix + ".running_mean", EntryKind.RunningMean, channels);
        p.Add(prefix + ".running_var", EntryKind.RunningVar, channels);
    }

    // ----- application -----

    public static Tensor Linear(ParamStore p, string prefix, Tensor x) =>
        F.linear(x, p[prefix + ".weight"], p.Contains(prefix + ".bias") ? p[prefix + ".bias"] : null);

    public static Tensor LayerNorm(ParamStore p, string prefix, Tensor x, double eps) =>
        F.layer_norm(x, [x.shape[^1]], p[prefix + ".weight"], p[prefix + ".bias"], eps);

    /// <summary>
    /// nn.BatchNorm (eps 1e-5, momentum 0.1). Train mode normalises with the batch statistics and updates the running
    /// statistics in place (on the working copy; the fixture stores the values from before the forward).
    /// </summary>
    public static Tensor BatchNorm(ParamStore p, string prefix, Tensor x, bool train) =>
        F.batch_norm(x, p[prefix + ".running_mean"], p[prefix + ".running_var"], p[prefix + ".weight"], p[prefix + ".bias"],
            training: train, momentum: 0.1, eps: 1e-5);

    public static Tensor Conv2d(ParamStore p, string prefix, Tensor x, long stride, long padding) =>
        F.conv2d(x, p[prefix + ".weight"], p.Contains(prefix + ".bias") ? p[prefix + ".bias"] : null,
            strides: [stride, stride], padding: [padding, padding]);

    public static Tensor Conv3d(ParamStore p, string prefix, Tensor x, long[] stride, long[] padding) =>
        F.conv3d(x, p[prefix + ".weight"], p.Contains(prefix + ".bias") ? p[prefix + ".bias"] : null,
            strides: stride, padding: padding);

    /// <summary>nn.GELU() / HF "gelu": the exact erf form, not the tanh approximation.</summary>
    public static Tensor Gelu(Tensor x) => F.gelu(x);
}
