using Sbp.CudaSim;
using Sbp.Models.Architectures;
using Sbp.Models.Pretrained;
using Sbp.Nn;
using Sbp.Tensors;

namespace Sbp.Models.Tests.Reference;

/// <summary>
/// Our models compute what their official implementations compute: each fixture (written by
/// tools/ReferenceFixtures from libtorch code written after the official Video Swin, HF VideoMAE, torchvision
/// ResNet and R(2+1)D) is loaded through <see cref="OfficialWeights"/> and must give the same logits and loss
/// (1e-4 relative to the largest reference value) and every parameter and input gradient (1e-3), on the CPU and
/// on the simulated CUDA device, and for the models with SBP regions also under SBP at keep 1.
/// </summary>
[Category("reference")]
public sealed class ReferenceFixtureTests
{
    const double LogitTolerance = 1e-4, GradTolerance = 1e-3;

    static readonly string[] Expected =
        ["r2plus1d-tiny-eval", "r2plus1d-tiny-train", "resnet18-tiny-eval", "resnet18-tiny-train", "resnet50-tiny-eval",
         "swin-odd-pad", "swin-shifted", "swin-small-map", "videomae-tiny"];

    public static IEnumerable<TestCaseData> Cases()
    {
        foreach (var name in Expected)
            foreach (var device in new[] { "cpu", "cuda-sim" })
            {
                yield return new TestCaseData(name, device, false).SetName($"{name} on {device}");
                if (name.StartsWith("swin", StringComparison.Ordinal) || name.StartsWith("videomae", StringComparison.Ordinal))
                    yield return new TestCaseData(name, device, true).SetName($"{name} on {device}, SBP keep 1");
            }
    }

    /// <summary>SBP_CUDA_TEST_DEVICE=cuda runs the CUDA cases on cuda:0 instead of the simulated device (as the other CUDA tests do).</summary>
    static Device NewDevice(string kind, string name) =>
        kind == "cpu" ? Device.CreateCpu(name)
        : Environment.GetEnvironmentVariable("SBP_CUDA_TEST_DEVICE") == "cuda" ? Sbp.Backends.Cuda.CudaDevices.Get(0)
        : SimulatedCuda.CreateDevice(name);

    [Test]
    public void Every_expected_fixture_is_committed() =>
        Assert.That(ReferenceFixture.Names(), Is.EquivalentTo(Expected), $"fixtures in {ReferenceFixture.Folder}; regenerate with tools/ReferenceFixtures");

    [TestCaseSource(nameof(Cases))]
    public void Matches_the_reference(string name, string deviceKind, bool keepAll)
    {
        var fixture = ReferenceFixture.Load(name);
        var device = NewDevice(deviceKind, $"reference {name} {deviceKind}");
        var run = ReferenceRun.Of(fixture, device, keepAll);
        Assert.That(device.Pool.InUseBytes, Is.EqualTo(0), "tensors leaked");
        Assert.That(run.Regions, keepAll ? Is.Positive : Is.Zero, "SBP regions ran only when asked for");
        var failures = new List<string>();
        Check(failures, "logits", run.Logits, fixture.Logits.Values, LogitTolerance);
        Check(failures, "loss", [run.Loss], [fixture.Loss], LogitTolerance);
        if (fixture.InputGrad is { } gi) Check(failures, "grad.input", run.InputGrad!, gi.Values, GradTolerance);
        Assert.That(run.Grads.Keys, Is.EquivalentTo(fixture.Grads.Keys), "every official parameter has exactly one gradient of ours");
        foreach (var (key, reference) in fixture.Grads)
        {
            Assert.That(run.Grads[key].Shape, Is.EqualTo(reference.Shape), key);
            Check(failures, "grad." + key, run.Grads[key].Values, reference.Values, GradTolerance);
        }
        var worst = fixture.Grads.Keys.Max(k => RelativeError(run.Grads[k].Values, fixture.Grads[k].Values));
        TestContext.Out.WriteLine($"{name} on {deviceKind}{(keepAll ? ", SBP keep 1" : "")}: logits {RelativeError(run.Logits, fixture.Logits.Values):E1}, " +
            $"worst parameter gradient {worst:E1} ({fixture.Grads.Count} compared)");
        Assert.That(failures, Is.Empty, $"{name} on {deviceKind}: " + string.Join("; ", failures.Take(12)));
    }

    /// <summary>The largest difference relative to the largest reference magnitude (floored so all-zero references compare absolutely).</summary>
    public static double RelativeError(float[] actual, float[] reference)
    {
        Assert.That(actual, Has.Length.EqualTo(reference.Length));
        double scale = Math.Max(reference.Max(v => Math.Abs((double)v)), 1e-5), worst = 0;
        for (int i = 0; i < actual.Length; i++) worst = Math.Max(worst, Math.Abs((double)actual[i] - reference[i]));
        return double.IsFinite(worst) && actual.All(float.IsFinite) ? worst / scale : double.PositiveInfinity;
    }

    static void Check(List<string> failures, string what, float[] actual, float[] reference, double tolerance)
    {
        double err = RelativeError(actual, reference);
        if (!(err <= tolerance)) failures.Add($"{what}: relative error {err:E2} > {tolerance:E0}");
    }
}
