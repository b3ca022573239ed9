using System.Globalization;
using System.Text;
using Sbp.Autograd;
using Sbp.Engine.Tests.Support;
using Sbp.Models.Architectures;
using Sbp.Nn;
using Sbp.Rng;
using Sbp.Tensors;

namespace Sbp.Models.Tests.Architectures;

/// <summary>
/// Finite-difference checks of whole models and a shifted Swin block (SBP off), in the manner of
/// the engine's GradCheck (loss = sum(f(x) * R), Richardson-extrapolated central differences in
/// float32 inputs, the loss in double, the default tolerances) but with the module's parameters
/// living on the test's device: every element of the input and of the named parameters
/// (substituted through WithParameters) is perturbed.
/// </summary>
public sealed class ModelGradCheckTests : ModelTestBase
{
    // The default tolerances; a step of 3e-3 instead of 3e-2 because a whole model composes many
    // nonlinearities (ReLU kinks that batch-normed activations sit within 1e-2 of, attention logits
    // of order ten): at 1e-2 det-nano's bn2.bias crosses a kink, at 3e-2 ViT's pos_embed is 0.3% off.
    static readonly GradCheckOptions Options = GradCheckOptions.Default with { Eps = 3e-3 };

    void Check(string what, Module model, Func<Tensor, Tensor> f, int[] inputShape, params string[] parameters)
    {
        var input = Rand.Uniform(31, Ref.Numel(inputShape));
        var values = parameters.ToDictionary(p => p, p => model.NamedParameters().Single(n => n.Name == p).Tensor.ToArray());
        var shapes = parameters.ToDictionary(p => p, p => model.NamedParameters().Single(n => n.Name == p).Tensor.Shape);
        float[]? r = null;

        double Loss(float[] x, IReadOnlyDictionary<string, float[]> ps, bool grad, out Dictionary<string, float[]> grads)
        {
            grads = [];
            using var scope = TensorScope.Begin();
            var subs = ps.ToDictionary(kv => kv.Key, kv => Tensor.FromArray(kv.Value, shapes[kv.Key], Device));
            var xt = Tensor.FromArray(x, new Shape(inputShape), Device);
            if (grad)
            {
                xt.RequiresGrad = true;
                foreach (var s in subs.Values) s.RequiresGrad = true;
            }
            using var with = model.WithParameters(subs);
            using var tape = grad ? Tape.Begin() : null;
            Tensor y;
            if (grad) y = f(xt);
            else using (Tape.NoGrad()) y = f(xt);
            r ??= Rand.AwayFromZero(9001, checked((int)y.Numel), 0.5f, 1.5f);
            var yv = y.ToArray();
            double loss = 0;
            for (int i = 0; i < yv.Length; i++) loss += (double)yv[i] * r[i];
            if (grad)
            {
                var rt = Tensor.FromArray(r, y.Shape, Device);
                tape!.Backward(Ops.Sum(Ops.Mul(y, rt)));
                grads["input"] = xt.Grad!.ToArray();
                foreach (var (name, s) in subs) grads[name] = s.Grad!.ToArray();
            }
            return loss;
        }

        Loss(input, values, true, out var analytic);
        var all = new Dictionary<string, float[]>(values) { ["input"] = input };
        var failures = new StringBuilder();
        int failed = 0, count = 0;
        foreach (var (name, data) in all)
        {
            for (int e = 0; e < data.Length; e++)
            {
                double numeric = GradCheck.Derivative(data, e, Options.Eps, () => Loss(input, values, false, out _)), got = analytic[name][e];
                count++;
                if (Math.Abs(got - numeric) <= Options.Atol + Options.Rtol * Math.Abs(numeric)) continue;
                if (failed++ < 6)
                    failures.AppendLine(string.Create(CultureInfo.InvariantCulture, $"  {name}[{e}]: analytic {got:G6} vs numeric {numeric:G6}"));
            }
        }
        Assert.That(failed, Is.Zero, $"{what}: {failed} of {count} gradient elements differ from central differences:\n{failures}");
    }

    [Test]
    public void Shifted_swin_block_input_and_relative_bias_gradients()
    {
        var block = Own(new SwinBlock3d(4, 2, (2, 2, 2), shifted: true, 2f, true, 0f, new RandomSource(8), Device));
        // Bias values of order 1 so the check sees them (the trunc-normal 0.02 init is tiny).
        using (Tape.NoGrad())
            Init.Uniform(block.Attn.RelativePositionBiasTable, -1f, 1f, new RandomSource(10));
        Check("shifted swin block", block, x => block.Forward(x), [1, 4, 4, 4, 4], "attn.relative_position_bias_table", "norm1.weight");
    }

    [Test]
    public void Swin_model_input_and_patch_embedding_gradients()
    {
        var m = Build("swin-nano");
        Check("swin-nano", m, x => m.Forward(x), [1, 3, 2, 4, 4], "patch_embed.proj.bias", "layers.1.downsample.norm.weight");
    }

    [Test]
    public void Swin_with_a_convolutional_stem_gradients()
    {
        // The stem's convolution and batch norm (training mode, statistics over the batch) under the patch embedding.
        var m = Own(new VideoSwinTransformer(VideoSwinConfig.SwinNano with { StemChannels = 2 }, new RandomSource(7), Device));
        Check("swin-nano with a stem", m, x => m.Forward(x), [2, 3, 2, 4, 4], "patch_embed.stem.0.weight", "patch_embed.stem.1.bias", "patch_embed.proj.weight");
    }

    [Test]
    public void Vit_model_position_embedding_and_qkv_gradients()
    {
        var m = (VideoVit)Build("vit-nano");
        Check("vit-nano", m, x => m.Forward(x), [1, .. m.SampleShape], "pos_embed", "blocks.1.attn.qkv.bias", "cls_token");
    }

    [Test]
    public void Detector_input_and_batch_norm_affine_gradients()
    {
        var m = Build("det-nano");
        Check("det-nano", m, x => m.Forward(x), [1, 3, 3, 4, 4], "backbone.stem.bn1.weight", "backbone.layer2.0.bn2.bias", "head.proj.bias");
    }
}
