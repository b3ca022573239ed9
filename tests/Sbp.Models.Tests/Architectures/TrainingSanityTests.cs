using Sbp.Autograd;
using Sbp.Engine.Tests.Support;
using Sbp.Models.Architectures;
using Sbp.Optim;
using Sbp.Stochastic;
using Sbp.Tensors;

namespace Sbp.Models.Tests.Architectures;

/// <summary>A few AdamW steps on a tiny fixed random problem lower the loss, with SBP off and on (Oracle).</summary>
public sealed class TrainingSanityTests : ModelTestBase
{
    float[] Train(VideoModel model, SbpPolicy? sbp, int steps)
    {
        var input = Input(model, batch: 2, seed: 21);
        bool perFrame = model.PerFrameLabels;
        int labels = perFrame ? 2 * model.SampleShape[0] : 2;
        var targets = Rand.Ints(22, labels, 0, model.NumClasses);
        using var opt = new AdamW(model.NamedParameters(), learningRate: 1e-2f, weightDecay: 0f);
        var losses = new float[steps];
        for (int s = 0; s < steps; s++)
        {
            model.ZeroGrad();
            using var scope = TensorScope.Begin();
            var x = Tensor.FromArray(input.Data, new Shape(input.Shape), Device);
            var t = perFrame ? Tensor.FromArray(targets, new Shape(2, model.SampleShape[0]), Device) : Tensor.FromArray(targets, new Shape(2), Device);
            using (var tape = Tape.Begin())
            {
                var y = model.Forward(x, sbp, s);
                var loss = perFrame ? FrameDetector.FrameLoss(y, t) : Ops.CrossEntropy(y, t);
                losses[s] = loss.Item();
                tape.Backward(loss);
            }
            opt.Step();
        }
        model.ZeroGrad();
        return losses;
    }

    [TestCase("swin-nano", false)]
    [TestCase("swin-nano", true)]
    [TestCase("vit-nano", false)]
    [TestCase("vit-nano", true)]
    [TestCase("det-nano", false)]
    [TestCase("det-nano", true)]
    public void Loss_decreases_within_a_few_steps(string config, bool sbp)
    {
        var m = Build(config);
        var placement = config.StartsWith("vit", StringComparison.Ordinal) ? SbpPlacement.BranchOutput : SbpPlacement.BlockOutput;
        var losses = Train(m, sbp ? Policy(placement, RegionMode.Oracle, config.StartsWith("vit", StringComparison.Ordinal) ? MaskKind.Grid : MaskKind.Strided) : null, 16);
        Assert.That(losses, Has.All.Not.NaN);
        Assert.That(losses[^1], Is.LessThan(0.85f * losses[0]), $"losses: {string.Join(", ", losses)}");
    }
}
