using Sbp.Autograd;
using Sbp.Models.Architectures;
using Sbp.Rng;
using Sbp.Tensors;

namespace Sbp.Models.Tests.Architectures;

/// <summary>
/// Whole models through FlopCounter: a small ViT against its multiply-adds counted by hand, and Video Swin-T at
/// 32 x 224² against the 88 G multiply-adds its paper publishes (Liu et al., Table 1, counted as fvcore does).
/// </summary>
public class FlopCountTests
{
    static OpCost ForwardCost(string name, int batch, bool summary = true)
    {
        using var model = ModelFactory.Create(name, new RandomSource(1), Device.CreateCpu($"flops {name}"));
        var cost = model.CountForward(batch);
        Assert.That(model.Training, Is.True, "the training mode is restored");
        if (!summary) return cost;
        var s = model.Summary(batch);
        Assert.That(s.ForwardMacs, Is.EqualTo(cost.ForwardMacs));
        Assert.That(s.ToString(), Does.Contain($"forward: {cost.ForwardMacs / 1e9:F3} G multiply-adds for input [{batch}, "));
        return cost;
    }

    [Test]
    public void Vit_nano_forward_is_its_hand_count()
    {
        // vit-nano: clips [3, 4, 8, 8], tubelets 2x4x4 -> 8 tokens + CLS = 9, width 16, 3 blocks, 2 heads, MLP 64, 5 classes.
        const long tokens = 9, c = 16;
        long embed = 8 * c * (3 * 2 * 4 * 4);                  // the tubelet convolution
        long qkv = tokens * c * 3 * c, attention = 2 * tokens * tokens * (8 + 8), proj = tokens * c * c, mlp = 2 * tokens * c * 4 * c;
        long head = c * 5;                                      // the CLS token only
        long perClip = embed + 3 * (qkv + attention + proj + mlp) + head;
        var cost = ForwardCost("vit-nano", batch: 2);
        Assert.That(cost.ForwardMacs, Is.EqualTo(2 * perClip));
        Assert.That(cost.BackwardMacs, Is.GreaterThan(cost.ForwardMacs), "the weights need gradients (the clip does not)");
    }

    [Test]
    public void Video_swin_t_at_32x224_is_the_published_88_g_multiply_adds()
    {
        var cost = ForwardCost("swin-t", batch: 1, summary: false);
        Assert.That(cost.ForwardMacs / 1e9, Is.EqualTo(88.0).Within(0.5), "Video Swin-T, 32 x 224 x 224, one view: 88 G");
    }
}
