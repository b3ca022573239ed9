using Sbp.Autograd;
using Sbp.Models.Architectures;
using Sbp.Models.Data;
using Sbp.Models.Training;
using Sbp.Nn;
using Sbp.Rng;
using Sbp.Tensors;

namespace Sbp.Models.Tests.Architectures;

/// <summary>
/// <see cref="FrameDetector.CalibrateBatchNorm"/>: frozen batch norm from scratch is the identity,
/// which left the detector at the label prior; calibrated statistics are those of each layer's input.
/// </summary>
public sealed class FrameDetectorCalibrationTests : ModelTestBase
{
    const int Size = 16;

    // short videos at half size keep the tests fast (48 frames hold at least one gap and one action)
    static SyntheticDetection Data(int count) => new(new SyntheticDetectionOptions { Count = count, Frames = 48 }, DataSplit.Train);

    (FrameDetector Model, VideoBatch Batch) Setup(string name, int videos)
    {
        var data = Data(videos);
        var loader = new VideoLoader(data, new VideoLoaderOptions { BatchSize = videos, Train = false, Transform = ClipTransform.Resize(Size, Size) }, Device);
        var m = (FrameDetector)Own(ModelFactory.Create(name, new RandomSource(1), Device, data.ClassNames.Count, data.Options.Frames, Size, Size));
        var batch = Own(loader.Batch(Enumerable.Range(0, videos).ToArray()));
        return (m, batch);
    }

    [Test]
    public void Statistics_are_those_of_each_layer_input_and_the_layers_stay_frozen()
    {
        var (m, batch) = Setup("det-nano", 2);
        var stem = m.Backbone.Stem;
        using var scope = TensorScope.Begin();
        var x = Trainer.Input(m, batch.Clips);
        var frames = Ops.Reshape(x, x.Shape[0] * x.Shape[1], 3, Size, Size);
        float[] conv;
        using (Tape.NoGrad()) conv = stem.Conv1.Forward(frames).ToArray();
        var affine = m.NamedParameters().Where(p => p.Name.Contains("bn", StringComparison.Ordinal)).Select(p => p.Tensor.ToArray()).ToList();

        m.CalibrateBatchNorm(x);

        // the stem's statistics, from its conv output [N, C, H, W]: per-channel mean and unbiased variance
        int n = frames.Shape[0], c = stem.Conv1.Weight.Shape[0], hw = Size * Size;
        var mean = new float[c];
        var variance = new float[c];
        for (int ch = 0; ch < c; ch++)
        {
            var v = Enumerable.Range(0, n).SelectMany(i => Enumerable.Range(0, hw).Select(k => (double)conv[(i * c + ch) * hw + k])).ToArray();
            double mu = v.Average();
            mean[ch] = (float)mu;
            variance[ch] = (float)(v.Sum(a => (a - mu) * (a - mu)) / (v.Length - 1));
        }
        Assert.That(stem.Bn1.RunningMean.ToArray(), Is.EqualTo(mean).Within(1e-3f));
        Assert.That(stem.Bn1.RunningVar.ToArray(), Is.EqualTo(variance).Within(1e-3f).Percent);
        Assert.That(mean.Select(Math.Abs).Max(), Is.GreaterThan(0.05f), "the stem's input is not centred, so calibration changes the statistics");
        Assert.That(m.NamedModules().Select(p => p.Module).OfType<BatchNorm>(), Has.All.Matches<BatchNorm>(b => b.Frozen));
        Assert.That(m.NamedParameters().Where(p => p.Name.Contains("bn", StringComparison.Ordinal)).Select(p => p.Tensor.ToArray()), Is.EqualTo(affine), "affine parameters unchanged");
        Assert.That(m.Training, Is.True);
    }

    [Test]
    public void Frozen_layers_then_normalize_their_calibration_batch()
    {
        var (m, batch) = Setup("det-nano", 2);
        using var scope = TensorScope.Begin();
        var x = Trainer.Input(m, batch.Clips);
        m.CalibrateBatchNorm(x);
        using var noGrad = Tape.NoGrad();
        // the last block's bn2 output (before the residual add): per channel mean ~0 and variance ~1
        var h = m.Backbone.Stem.Forward(Ops.Reshape(x, x.Shape[0] * x.Shape[1], 3, Size, Size));
        for (int s = 0; s < 3; s++) h = m.Backbone.Layers[s].Forward(h);
        var block = (BasicBlock2d)m.Backbone.Layers[3][0];
        var y = block.Bn2.Forward(block.Conv2.Forward(Ops.Relu(block.Bn1.Forward(block.Conv1.Forward(h)))));
        int n = y.Shape[0], c = y.Shape[1], hw = y.Shape[2] * y.Shape[3];
        var a = y.ToArray();
        for (int ch = 0; ch < c; ch++)
        {
            var v = Enumerable.Range(0, n).SelectMany(i => Enumerable.Range(0, hw).Select(k => (double)a[(i * c + ch) * hw + k])).ToArray();
            double mu = v.Average(), var = v.Sum(q => (q - mu) * (q - mu)) / v.Length;
            Assert.That(mu, Is.EqualTo(0).Within(1e-2), $"channel {ch} mean");
            Assert.That(var, Is.EqualTo(1).Within(0.02), $"channel {ch} variance");
        }
    }
}
