using Sbp.Autograd;
using Sbp.Engine.Tests.Support;
using Sbp.Stochastic;
using Sbp.Tensors;

namespace Sbp.Engine.Tests.Reliability;

/// <summary>
/// Anomaly mode: the first op whose output (forward) or returned gradient (backward) holds NaN/Inf
/// throws an AnomalyException naming it, its shapes, the counts, the first index and the SBP region.
/// The DeviceTest teardown checks that a thrown anomaly leaks nothing.
/// </summary>
public class AnomalyModeTests : DeviceTest
{
    [Test]
    public void OffByDefaultAndTheSameCodeRunsWithoutError()
    {
        Assert.That(Tape.AnomalyMode, Is.False);
        using var x = T([1f, -1f, 2f, -3f], 2, 2);
        x.RequiresGrad = true;
        using (var tape = Tape.Begin())
        {
            var y = Ops.Log(Ops.Mul(x, 1f));
            Assert.That(y.ToArray().Count(float.IsNaN), Is.EqualTo(2), "log(-1) is NaN; anomaly mode off lets it through");
            tape.Backward(Ops.Sum(y));
        }
        using var z = T([0f, 1f, 4f], 3);
        z.RequiresGrad = true;
        using (var tape = Tape.Begin()) tape.Backward(Ops.Sum(Ops.Sqrt(z)));
        Assert.That(float.IsPositiveInfinity(z.Grad!.ToArray()[0]), Is.True, "sqrt's gradient at 0 is Inf, unchecked when off");
    }

    [Test]
    public void ForwardNaNFromLogOfANegativeNamesTheOp()
    {
        using var x = T([1f, -1f, 2f, -3f], 2, 2);
        x.RequiresGrad = true;
        using var tape = Tape.Begin();
        using var anomalies = Tape.DetectAnomalies();
        var h = Ops.Mul(x, 1f);
        var ex = Assert.Throws<AnomalyException>(() => Ops.Log(h))!;
        Assert.That(ex.Phase, Is.EqualTo(AnomalyPhase.Forward));
        Assert.That(ex.Op, Is.EqualTo("log"));
        Assert.That(ex.InputShapes, Is.EqualTo(new[] { new Shape(2, 2) }));
        Assert.That(ex.TensorShape, Is.EqualTo(new Shape(2, 2)));
        Assert.That((ex.NaNCount, ex.InfCount, ex.FirstIndex), Is.EqualTo((2L, 0L, 1L)));
        Assert.That(ex.Region, Is.Null);
        Assert.That(ex.Message, Does.Contain("forward").And.Contain("'log'").And.Contain("2 NaN").And.Contain("[2, 2]")
            .And.Contain("index 1").And.Contain("(at [0, 1])").And.Contain("Hint:").And.Contain("(all finite)"));
        Assert.That(ex.Message, Is.EqualTo(
            "Anomaly in forward: op 'log' produced 2 non-finite value(s) (2 NaN, 0 Inf) in its output [2, 2]; first at index 1 (at [0, 1]). Inputs: [2, 2] (all finite). Not in an SBP region." +
            " Hint: log of a value <= 0 (NaN below 0, -Inf at 0); clamp the input (Ops.Add(x, eps)) or use a log-space op (LogSoftmax, CrossEntropy)."), "the message in full");
        Assert.That(tape.Nodes.Select(n => n.Op), Is.EqualTo(new[] { "mul_scalar" }), "the failing op was not recorded");
    }

    [Test]
    public void OpsThatAreNotRecordedAreCheckedToo()
    {
        using var x = T([1f, -1f], 2);   // no tape, no RequiresGrad: Tape.Record records nothing
        using var anomalies = Tape.DetectAnomalies();
        var ex = Assert.Throws<AnomalyException>(() => Ops.Log(x))!;
        Assert.That((ex.Op, ex.NaNCount, ex.FirstIndex), Is.EqualTo(("log", 1L, 1L)));
    }

    [Test]
    public void ForwardInfFromDivisionByZeroCountsAndLocatesIt()
    {
        using var a = T([1f, 2f, 3f, 0f, 5f, 6f], 2, 3);
        using var b = T([1f, 1f, 0f], 3);
        using var anomalies = Tape.DetectAnomalies();
        var ex = Assert.Throws<AnomalyException>(() => Ops.Div(a, b))!;
        // a / b broadcasts b over rows: 3/0 = Inf at flat index 2 and 6/0 = Inf at 5.
        Assert.That((ex.Op, ex.InfCount, ex.NaNCount, ex.FirstIndex), Is.EqualTo(("div", 2L, 0L, 2L)));
        Assert.That(ex.InputShapes, Is.EqualTo(new[] { new Shape(2, 3), new Shape(3) }));
        Assert.That(ex.Message, Does.Contain("2 Inf").And.Contain("[2, 3], [3]").And.Contain("epsilon"));
    }

    [Test]
    public void ANaNAlreadyInAnInputIsReportedAsSuch()
    {
        using var x = T([float.NaN, 1f], 2);
        using var anomalies = Tape.DetectAnomalies();
        var ex = Assert.Throws<AnomalyException>(() => Ops.Exp(x))!;
        Assert.That(ex.Message, Does.Contain("input(s) 0 already hold NaN/Inf"));
    }

    [Test]
    public void NaNOnlyInBackwardNamesTheNodeAndLeavesNoGradient()
    {
        using var x = T([0f, 1f, 4f], 3);
        x.RequiresGrad = true;
        using var anomalies = Tape.DetectAnomalies();
        using var tape = Tape.Begin();
        var loss = Ops.Sum(Ops.Sqrt(x));   // forward finite: sqrt(0) = 0
        var ex = Assert.Throws<AnomalyException>(() => tape.Backward(loss))!;
        Assert.That(ex.Phase, Is.EqualTo(AnomalyPhase.Backward));
        Assert.That((ex.Op, ex.InputIndex, ex.InfCount, ex.FirstIndex), Is.EqualTo(("sqrt", (int?)0, 1L, 0L)));
        Assert.That(ex.Message, Does.Contain("backward").And.Contain("'sqrt'").And.Contain("input 0 [3]")
            .And.Contain("incoming gradient is finite").And.Contain("Sqrt(x + eps)"));
        Assert.That(ex.Message, Is.EqualTo(
            "Anomaly in backward: op 'sqrt' (tape node #0) returned a gradient for input 0 [3] with 1 non-finite value(s) (0 NaN, 1 Inf); first at index 0. Inputs: [3]; output [3]; the incoming gradient is finite. Not in an SBP region." +
            " Hint: the gradient of sqrt is g / (2 sqrt(x)): Inf at x = 0; use Sqrt(x + eps)."), "the message in full");
        Assert.That(x.Grad, Is.Null, "the bad gradient was not accumulated");
        Assert.That(tape.IsFreed, Is.True);
        Assert.That(tape.SavedBytes, Is.Zero);
    }

    [Test]
    public void ABadGradientOfTheSecondInputLeaksNothingOfTheFirst()
    {
        // pow(a, b) at a = 0, b = 1: forward 0, d/da = b * a^(b-1) = 1 (finite), d/db = a^b * log(a) = 0 * -Inf = NaN.
        using var a = T([0f, 2f], 2);
        using var b = T([1f, 1f], 2);
        a.RequiresGrad = b.RequiresGrad = true;
        using var anomalies = Tape.DetectAnomalies();
        using var tape = Tape.Begin();
        var loss = Ops.Sum(Ops.Pow(a, b));
        var ex = Assert.Throws<AnomalyException>(() => tape.Backward(loss))!;
        Assert.That((ex.Op, ex.InputIndex, ex.NaNCount, ex.FirstIndex), Is.EqualTo(("pow", (int?)1, 1L, 0L)));
        Assert.That((a.Grad, b.Grad), Is.EqualTo(((Tensor?)null, (Tensor?)null)), "neither gradient was accumulated");
        // The DeviceTest teardown checks that input 0's finite gradient was freed too.
    }

    [Test]
    public void ForwardAnomalyInsideAnSbpRegionNamesTheRegion()
    {
        using var x = T(Rand.Uniform(3, 12, -1f, 1f), 2, 6);
        x.RequiresGrad = true;
        using var anomalies = Tape.DetectAnomalies();
        using var tape = Tape.Begin();
        var mask = KeepMask.FromIndices(6, [0, 2, 4]);
        var ex = Assert.Throws<AnomalyException>(() => SbpRegion.Run("stage1.block0", x, 1, mask, h => Ops.Log(Ops.Mul(h, 2f))))!;
        Assert.That((ex.Op, ex.Region), Is.EqualTo(("log", "stage1.block0")));
        Assert.That(ex.Message, Does.Contain("In SBP region 'stage1.block0'"));
        int negatives = x.ToArray().Count(v => v < 0);
        Assert.That(ex.NaNCount, Is.EqualTo(negatives));
    }

    [Test]
    public void BackwardAnomalyInsideAnSbpRegionNamesTheRegion()
    {
        using var x = T([0f, 1f, 0f, 4f, 0f, 9f, 1f, 0f, 1f, 1f, 0f, 1f], 2, 6);
        x.RequiresGrad = true;
        using var anomalies = Tape.DetectAnomalies();
        using var tape = Tape.Begin();
        var mask = KeepMask.FromIndices(6, [0, 3, 4]);
        var y = SbpRegion.Run("blk", x, 1, mask, h => Ops.Sqrt(Ops.Mul(h, 1f)));
        var ex = Assert.Throws<AnomalyException>(() => tape.Backward(Ops.Sum(y)))!;
        Assert.That((ex.Phase, ex.Op, ex.Region), Is.EqualTo((AnomalyPhase.Backward, "sqrt", "blk")));
        // Kept columns 0, 3, 4 hold zeros at [0,0], [0,4], [1,4]; the compact gradient [2, 3] has Inf there.
        Assert.That(ex.InfCount, Is.EqualTo(3));
        Assert.That(ex.TensorShape, Is.EqualTo(new Shape(2, 3)));
        Assert.That(ex.Message, Does.Contain("compact"));
        Assert.That(ex.Message, Is.EqualTo(
            "Anomaly in backward: op 'sqrt' (tape node #1) returned a gradient for input 0 [2, 3] with 3 non-finite value(s) (0 NaN, 3 Inf); first at index 0 (at [0, 0]). Inputs: [2, 6]; output [2, 6] (compact: SBP kept positions only); the incoming gradient is finite. In SBP region 'blk'." +
            " Hint: the gradient of sqrt is g / (2 sqrt(x)): Inf at x = 0; use Sqrt(x + eps)."), "the message in full");
    }

    [Test]
    public void LargeFiniteValuesAndIntegerOutputsAreNotFlagged()
    {
        using var x = T([float.MaxValue, -float.MaxValue, 3e38f, 1f], 4);
        using var anomalies = Tape.DetectAnomalies();
        using var y = Ops.Mul(x, 1f);   // the sum of squares overflows float32 but not the float64 reduction
        using var idx = Idx(0, 3);
        using var z = Ops.IndexSelect(x, 0, idx);
        Assert.That(y.ToArray(), Has.All.Matches<float>(float.IsFinite));
    }

    [Test]
    public void TheScopeRestoresThePreviousSetting()
    {
        using (Tape.DetectAnomalies())
        {
            Assert.That(Tape.AnomalyMode, Is.True);
            using (Tape.DetectAnomalies(false)) Assert.That(Tape.AnomalyMode, Is.False);
            Assert.That(Tape.AnomalyMode, Is.True);
        }
        Assert.That(Tape.AnomalyMode, Is.False);
        using (default(Tape.AnomalyScope)) { }
        Assert.That(Tape.AnomalyMode, Is.False);
    }
}
