using Sbp.Autograd;
using Sbp.Engine.Tests.Support;
using Sbp.Stochastic;
using Sbp.Tensors;

namespace Sbp.Engine.Tests.Stochastic;

/// <summary>
/// Tape.SaveActivationsAs: saved activations held in 16 bits. Exact byte counts (half of Float32, with and without
/// an SBP region), gradients within bfloat16 tolerance of Float32 saving, and the SBP oracle: a region and GradMask on
/// the same packed activations give the same gradients.
/// </summary>
public class SavedPrecisionTests : DeviceTest
{
    const int C = 12, Hidden = 20;

    RegionHarness Harness() => new(Device, 5, [2, 8, C], RegionHarness.MlpParameters(C, Hidden));

    /// <summary>The MLP body, in a region over the 8 positions (keep every other) or plain, optionally packing as bfloat16.</summary>
    static RegionHarness.Result Run(RegionHarness h, RunMode mode, DType? saveAs)
    {
        var packing = saveAs is { } dt ? Tape.SaveActivationsAs(dt) : default;
        using (packing)
            return h.Run((x, p) => RegionHarness.Region(mode, "mlp", x, 1, KeepMask.Strided(8, 2, 0), z => RegionHarness.Mlp(z, p)));
    }

    [TestCase(RunMode.Plain)]
    [TestCase(RunMode.SparseCache)]
    public void SixteenBitSavingHoldsHalfTheBytesAndGradientsStayWithinBfloat16Tolerance(RunMode mode)
    {
        var h = Harness();
        var full = Run(h, mode, null);
        var bf16 = Run(h, mode, DType.BFloat16);
        var f16 = Run(h, mode, DType.Float16);
        // index buffers are Int32; everything else, the layer norm's input and statistics included, is packed
        long kept = full.IndexBytes;
        Assert.Multiple(() =>
        {
            Assert.That(full.SavedBytes - kept, Is.GreaterThan(kept));
            Assert.That((bf16.SavedBytes - kept) * 2, Is.EqualTo(full.SavedBytes - kept), "every saved activation at 2 bytes instead of 4");
            Assert.That(f16.SavedBytes, Is.EqualTo(bf16.SavedBytes));
            Assert.That(bf16.Output, Is.EqualTo(full.Output), "the forward still computes in Float32");
        });
        // a weight gradient sums products over rows: its error follows the terms (2^-9 each for bfloat16), not the sum
        double scale = full.Grads.Values.Append(full.XGrad).Max(g => g.Max(Math.Abs));
        RegionHarness.AssertSameGradients(full, bf16, $"{mode} bfloat16", rtol: 2e-2, atol: 1e-2 * scale);
        RegionHarness.AssertSameGradients(full, f16, $"{mode} float16", rtol: 4e-3, atol: 2e-3 * scale);
        Assert.That(bf16.XGrad, Is.Not.EqualTo(full.XGrad), "backward did read the rounded activations");
    }

    [Test]
    public void TheSbpOracleHoldsOnPackedActivations()
    {
        var h = Harness();
        var sbp = Run(h, RunMode.SparseCache, DType.BFloat16);
        var oracle = Run(h, RunMode.Oracle, DType.BFloat16);
        RegionHarness.AssertSameGradients(oracle, sbp, "SBP vs GradMask, both saving bfloat16");
        Assert.That(sbp.SavedBytes, Is.LessThan(oracle.SavedBytes), "the region keeps half the positions");
    }

    [Test]
    public void AnActivationSavedByTwoOpsIsPackedOnceAndParametersAreNotCopied()
    {
        var x = Tensor.FromArray(Rand.Uniform(3, 64), new Shape(8, 8), Device);
        var w = Tensor.FromArray(Rand.Uniform(4, 64), new Shape(8, 8), Device, Sbp.Memory.MemoryCategory.Parameter);
        x.RequiresGrad = w.RequiresGrad = true;
        long packed, plain;
        using (var tape = Tape.Begin())
        {
            using var half = Tape.SaveActivationsAs(DType.BFloat16);
            var h = Ops.Exp(Ops.Mul(x, 0.5f));           // exp saves its output h
            var y = Ops.Add(Ops.Mul(h, h), Ops.Linear(h, w));   // mul saves h twice, linear saves h and references w
            packed = tape.SavedBytes;
            tape.Backward(Ops.Sum(y));
        }
        var gx = x.Grad!.ToArray();
        x.ZeroGrad();
        w.ZeroGrad();
        using (var tape = Tape.Begin())
        {
            var h = Ops.Exp(Ops.Mul(x, 0.5f));
            var y = Ops.Add(Ops.Mul(h, h), Ops.Linear(h, w));
            plain = tape.SavedBytes;
            tape.Backward(Ops.Sum(y));
        }
        Assert.Multiple(() =>
        {
            Assert.That(plain, Is.EqualTo(64 * 4), "h once, the weight not counted");
            Assert.That(packed, Is.EqualTo(64 * 2), "h packed once for exp, mul and linear");
        });
        RegionHarness.AssertClose(x.Grad!.ToArray(), gx, "input gradient", 2e-2, 2e-3);
        x.ZeroGrad();
        w.ZeroGrad();
        Assert.That(() => Tape.SaveActivationsAs(DType.Float32), Throws.ArgumentException.With.Message.Contains("BFloat16 or Float16"));
    }
}
