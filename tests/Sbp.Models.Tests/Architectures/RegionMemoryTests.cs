using Sbp.Autograd;
using Sbp.Models.Architectures;
using Sbp.Stochastic;
using Sbp.Tensors;

namespace Sbp.Models.Tests.Architectures;

/// <summary>
/// Issue 6: what each model's tape holds per SBP region at keep 1, 0.5 and 0.25 on a tiny config.
/// Regions that are position-wise along the SBP dimension (the detector's per-frame stages) hold
/// exactly keep x full; regions with attention over it (Video Swin blocks, ViT attention cores)
/// hold A + kept x B bytes, exactly affine in the kept count: the part that scales is what the
/// kept positions need, the constant part is the keys and values of every position.
/// </summary>
public class RegionMemoryTests : ModelTestBase
{
    IReadOnlyList<RegionReport> Regions(VideoModel model, double keep, MaskKind kind)
    {
        var policy = new SbpPolicy(new KeepMaskPolicy(kind, keep, Seed: 3), model.SbpPlacement);
        var (data, shape) = Input(model, batch: 2);
        using var scope = TensorScope.Begin();
        var x = Tensor.FromArray(data, new Shape(shape), Device);
        using var tape = Tape.Begin();
        model.Forward(x, policy, 0);
        return tape.Regions.ToList();
    }

    // swin-micro at 16 x 32 x 32: 8 token frames in temporal windows of 4, so keep 1/4 keeps one frame per window.
    [TestCase("det-nano", MaskKind.Strided, 0, 0)]
    [TestCase("swin-micro", MaskKind.Strided, 16, 32)]
    [TestCase("vit-nano", MaskKind.Grid, 0, 0)]
    [TestCase("r21d-nano", MaskKind.Strided, 0, 0)]
    public void SavedBytesPerRegionScaleWithKeep(string config, MaskKind kind, int frames, int size)
    {
        var model = frames == 0 ? Build(config) : Own(ModelFactory.Create(config, new Sbp.Rng.RandomSource(7), Device, null, frames, size, size));
        var full = Regions(model, 1, kind);
        var half = Regions(model, 0.5, kind);
        var quarter = Regions(model, 0.25, kind);
        Assert.That(full, Is.Not.Empty);
        Assert.That(half.Select(r => r.Name), Is.EqualTo(full.Select(r => r.Name)));
        Assert.That(quarter.Select(r => r.Name), Is.EqualTo(full.Select(r => r.Name)));
        TestContext.Out.WriteLine($"{config}: region | kept/size at 1, 0.5, 0.25 | saved bytes at 1, 0.5, 0.25");
        for (int i = 0; i < full.Count; i++)
        {
            var (f, h, q) = (full[i], half[i], quarter[i]);
            TestContext.Out.WriteLine($"  {f.Name} | {f.Kept}/{f.Size}, {h.Kept}/{h.Size}, {q.Kept}/{q.Size} | {f.SavedBytes}, {h.SavedBytes}, {q.SavedBytes}");
            Assert.That(f.Kept, Is.EqualTo(f.Size), "keep 1 keeps everything");
            Assert.That(h.FullSavedBytes, Is.EqualTo(f.SavedBytes), $"{f.Name}: the full-backprop bytes SBP reports are what keep 1 holds");
            Assert.That(q.FullSavedBytes, Is.EqualTo(f.SavedBytes));
            Assert.That(h.SavedBytes, Is.LessThan(f.SavedBytes), f.Name);
            Assert.That(q.SavedBytes, Is.LessThan(h.SavedBytes), f.Name);
            // Affine in the kept count: (S1 - S2) (k2 - k3) == (S2 - S3) (k1 - k2), exactly.
            long lhs = (f.SavedBytes - h.SavedBytes) * (long)(h.Kept - q.Kept), rhs = (h.SavedBytes - q.SavedBytes) * (long)(f.Kept - h.Kept);
            Assert.That(lhs, Is.EqualTo(rhs), $"{f.Name}: saved bytes are not affine in the kept count");
            if (model is R21dNet)
            {
                // Per-frame spatial blocks (1 x 3 x 3 convolutions, ReLU): exactly keep x full.
                Assert.That(h.SavedBytes * f.Size, Is.EqualTo(f.SavedBytes * (long)h.Kept), $"{f.Name}: a per-frame block holds exactly keep x full");
                Assert.That(q.SavedBytes * f.Size, Is.EqualTo(f.SavedBytes * (long)q.Kept), f.Name);
            }
            else if (model is FrameDetector)
            {
                // Per-frame stages hold keep x full, plus the frozen batch norms' per-channel statistics
                // (mean and 1/std, kept whole): 2 x channels x 4 bytes per batch norm of the stage.
                var parts = f.Name["backbone.stage".Length..].Split('.');
                var module = ((FrameDetector)model).RegionModule(int.Parse(parts[0], System.Globalization.CultureInfo.InvariantCulture), int.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture));
                long stats = module.NamedModules().Select(m => m.Module).OfType<Sbp.Nn.BatchNorm>().Sum(bn => 2L * bn.Channels * sizeof(float));
                Assert.That((h.SavedBytes - stats) * f.Size, Is.EqualTo((f.SavedBytes - stats) * (long)h.Kept), $"{f.Name}: a per-frame stage holds exactly keep x full (+ statistics)");
                Assert.That((q.SavedBytes - stats) * f.Size, Is.EqualTo((f.SavedBytes - stats) * (long)q.Kept), f.Name);
            }
            else
            {
                // The constant part (keys and values of dropped positions) is less than the full bytes.
                long perKept = (f.SavedBytes - h.SavedBytes) / (f.Kept - h.Kept);
                long constant = f.SavedBytes - perKept * f.Kept;
                Assert.That(perKept, Is.GreaterThan(0));
                Assert.That(constant, Is.InRange(0, f.SavedBytes - 1), f.Name);
            }
        }
    }
}
