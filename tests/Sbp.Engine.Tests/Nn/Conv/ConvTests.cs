using Sbp.Autograd;
using Sbp.Backends.Cpu;
using Sbp.Engine.Tests.Support;
using Sbp.Tensors;

namespace Sbp.Engine.Tests.Nn.Conv;

/// <summary>One convolution configuration: shapes of x and weight, bias or not, and per-axis options.</summary>
public sealed record ConvCase(string Name, int[] X, int[] W, bool Bias, int[] Stride, int[] Padding, int[] Dilation, int Groups)
{
    public bool ThreeD => X.Length == 5;
    public int[] B => [W[0]];

    public Tensor Run(Tensor x, Tensor w, Tensor? b) => ThreeD
        ? Ops.Conv3d(x, w, b, Stride, Padding, Dilation, Groups)
        : Ops.Conv2d(x, w, b, Stride, Padding, Dilation, Groups);

    public RefTensor Reference(RefTensor x, RefTensor w, RefTensor? b) => ThreeD
        ? ConvReference.Conv3d(x, w, b, Stride, Padding, Dilation, Groups)
        : ConvReference.Conv2d(x, w, b, Stride, Padding, Dilation, Groups);

    public override string ToString() => Name;
}

public sealed class ConvTests : DeviceTest
{
    static ConvCase C3(string name, int[] x, int[] w, bool bias, int[]? s = null, int[]? p = null, int[]? d = null, int g = 1) =>
        new(name, x, w, bias, s ?? [1, 1, 1], p ?? [0, 0, 0], d ?? [1, 1, 1], g);

    static ConvCase C2(string name, int[] x, int[] w, bool bias, int[]? s = null, int[]? p = null, int[]? d = null, int g = 1) =>
        new(name, x, w, bias, s ?? [1, 1], p ?? [0, 0], d ?? [1, 1], g);

    public static readonly ConvCase[] Cases =
    [
        C3("conv3d plain", [1, 2, 3, 4, 5], [3, 2, 2, 3, 2], bias: true),
        C3("conv3d stride 2", [2, 3, 5, 7, 6], [2, 3, 2, 2, 3], bias: false, s: [2, 2, 2]),
        C3("conv3d padding", [1, 2, 4, 5, 3], [3, 2, 3, 3, 3], bias: true, p: [1, 2, 1]),
        C3("conv3d dilation 2", [1, 2, 5, 7, 6], [2, 2, 2, 3, 2], bias: true, p: [1, 1, 0], d: [2, 2, 2]),
        // Every option at once on odd sizes: groups 2, a 3x1x2 kernel, stride, padding, dilation.
        C3("conv3d all options groups 2", [2, 4, 5, 7, 6], [4, 2, 3, 1, 2], bias: true, s: [2, 1, 2], p: [1, 0, 1], d: [2, 1, 2], g: 2),
        C3("conv3d depthwise", [2, 3, 4, 5, 4], [6, 1, 3, 3, 1], bias: true, s: [1, 2, 1], p: [1, 1, 0], g: 3),
        C3("conv3d pointwise groups 2", [2, 4, 3, 2, 3], [6, 2, 1, 1, 1], bias: true, g: 2),
        C3("conv3d 1x1x1 stride 2", [1, 3, 3, 5, 4], [2, 3, 1, 1, 1], bias: false, s: [2, 2, 2]),
        // Non-overlapping patches (stride = kernel) take their own column path: kW 4 (vector transposes
        // for 8 patches, then a tail of 1) and kW 3.
        C3("conv3d patches 2x2x4", [2, 3, 4, 4, 36], [5, 3, 2, 2, 4], bias: true, s: [2, 2, 4]),
        C3("conv3d patches 1x2x3", [1, 2, 3, 4, 6], [3, 2, 1, 2, 3], bias: false, s: [1, 2, 3]),
        C2("conv2d plain", [2, 3, 6, 5], [4, 3, 3, 2], bias: true),
        C2("conv2d all options groups 2", [2, 4, 7, 6], [6, 2, 3, 2], bias: true, s: [2, 1], p: [1, 1], d: [1, 2], g: 2),
        C2("conv2d depthwise", [1, 4, 5, 7], [4, 1, 3, 3], bias: false, p: [1, 1], g: 4),
        C2("conv2d pointwise", [2, 3, 4, 5], [5, 3, 1, 1], bias: true),
        C2("conv2d patches 4x4", [2, 3, 8, 36], [4, 3, 4, 4], bias: true, s: [4, 4]),
    ];

    static GradInput[] Inputs(ConvCase c, int seed)
    {
        var inputs = new List<GradInput> { GradInput.Uniform(seed, c.X), GradInput.Uniform(seed + 1, c.W) };
        if (c.Bias) inputs.Add(GradInput.Uniform(seed + 2, c.B));
        return [.. inputs];
    }

    [TestCaseSource(nameof(Cases))]
    public void Gradients_MatchFiniteDifferences(ConvCase c) =>
        GradCheck.Check(c.Name, xs => c.Run(xs[0], xs[1], c.Bias ? xs[2] : null), Inputs(c, 11));

    [TestCaseSource(nameof(Cases))]
    public void Forward_MatchesFloat64Reference(ConvCase c)
    {
        var xd = Rand.Uniform(3, Ref.Numel(c.X));
        var wd = Rand.Uniform(4, Ref.Numel(c.W));
        var bd = Rand.Uniform(5, c.W[0]);
        var y = c.Run(T(xd, c.X), T(wd, c.W), c.Bias ? T(bd, c.B) : null);
        var expected = c.Reference(RefTensor.Of(xd, c.X), RefTensor.Of(wd, c.W), c.Bias ? RefTensor.Of(bd, c.B) : null);
        Ref.AssertClose(c.Name, y, expected, rtol: 1e-4, atol: 1e-5);
    }

    [Test]
    public void Gradients_OnlyInputNeedsGrad() =>
        GradCheck.Check("conv3d dx only", xs => Ops.Conv3d(xs[0], xs[1], xs[2], stride: [1, 2, 1], padding: [1], groups: 2),
            GradInput.Uniform(21, 1, 4, 3, 5, 4), GradInput.Uniform(22, 2, 2, 2, 3, 2).Constant(), GradInput.Uniform(23, 2).Constant());

    [Test]
    public void Gradients_OnlyWeightAndBiasNeedGrad() =>
        GradCheck.Check("conv3d dw only", xs => Ops.Conv3d(xs[0], xs[1], xs[2], dilation: [2], padding: [1, 0, 1]),
            GradInput.Uniform(31, 2, 2, 4, 3, 5).Constant(), GradInput.Uniform(32, 3, 2, 2, 2, 3), GradInput.Uniform(33, 3));

    [Test]
    public void SmallWorkspace_RunsTheBatchInChunks_WithTheSameGradients()
    {
        var backend = CpuBackend.Instance;
        long saved = backend.ConvWorkspaceBytes;
        try
        {
            // [3, 4, 3, 4, 5] with a 2x2x2 kernel: 4*8 rows x 3*3*4 columns = 4608 bytes per sample; room for two.
            backend.ConvWorkspaceBytes = 2 * 4608;
            GradCheck.Check("conv3d chunked", xs => Ops.Conv3d(xs[0], xs[1], xs[2], padding: [0, 0, 1], stride: [1, 1, 2]),
                GradInput.Uniform(41, 3, 4, 3, 4, 5), GradInput.Uniform(42, 2, 4, 2, 2, 2), GradInput.Uniform(43, 2));
            backend.ConvWorkspaceBytes = 1;   // one sample at a time, groups 2
            GradCheck.Check("conv3d one sample per chunk", xs => Ops.Conv3d(xs[0], xs[1], null, padding: [1], groups: 2),
                GradInput.Uniform(44, 3, 4, 2, 3, 3), GradInput.Uniform(45, 4, 2, 2, 2, 2));
        }
        finally
        {
            backend.ConvWorkspaceBytes = saved;
        }
    }

    /// <summary>Large enough for the parallel loops (vol2col rows, col2vol planes, GEMM rows) to split.</summary>
    [TestCase(1)]
    [TestCase(2)]
    public void ForwardAndBackward_MatchFloat64Reference_OnParallelSizes(int groups)
    {
        int[] xs = [2, 8, 6, 11, 9], ws = [12, 8 / groups, 3, 3, 2];
        int[] stride = [1, 2, 1], pad = [1, 1, 0], dil = [1, 1, 2];
        var xd = Rand.Uniform(51, Ref.Numel(xs));
        var wd = Rand.Uniform(52, Ref.Numel(ws));
        var x = T(xd, xs);
        var w = T(wd, ws);
        x.RequiresGrad = true;
        w.RequiresGrad = true;
        Tensor y;
        float[] gd;
        using (var tape = Tape.Begin())
        {
            y = Ops.Conv3d(x, w, null, stride, pad, dil, groups);
            gd = Rand.Uniform(53, (int)y.Numel);
            tape.Backward(y, T(gd, y.Shape.ToArray()));
        }
        var rx = RefTensor.Of(xd, xs);
        var rw = RefTensor.Of(wd, ws);
        Ref.AssertClose("conv3d forward", y, ConvReference.Conv3d(rx, rw, null, stride, pad, dil, groups), rtol: 1e-4, atol: 1e-5);
        var (dx, dw) = ConvReference.Conv3dBackward(rx, rw, RefTensor.Of(gd, y.Shape.ToArray()), stride, pad, dil, groups);
        Ref.AssertClose("conv3d dx", x.Grad!, dx, rtol: 1e-4, atol: 1e-5);
        Ref.AssertClose("conv3d dw", w.Grad!, dw, rtol: 1e-4, atol: 1e-4);
    }

    [Test]
    public void Backward_SavesTheInputOnlyForTheWeightGradient_AndTheWeightOnlyForTheInputGradient()
    {
        var x = T(Rand.Uniform(61, 2 * 3 * 3 * 4 * 4), 2, 3, 3, 4, 4);
        var w = T(Rand.Uniform(62, 2 * 3 * 2 * 2 * 2), 2, 3, 2, 2, 2);
        x.RequiresGrad = true;
        using (var tape = Tape.Begin())
        {
            Ops.Conv3d(x, w);
            Assert.That(tape.SavedBytes, Is.EqualTo(w.Block.Bytes), "dx needs only the weight");
        }
        x.RequiresGrad = false;
        w.RequiresGrad = true;
        using (var tape = Tape.Begin())
        {
            Ops.Conv3d(x, w);
            Assert.That(tape.SavedBytes, Is.EqualTo(x.Block.Bytes), "dw needs only the input");
        }
    }

    [Test]
    public void Conv2d_WithDefaults_IsTheValidCorrelation()
    {
        // 1 x 1 x 3 x 3 input, 2 x 2 kernel of ones: each output is the sum of a 2 x 2 block.
        var x = T([1, 2, 3, 4, 5, 6, 7, 8, 9], 1, 1, 3, 3);
        var w = T([1, 1, 1, 1], 1, 1, 2, 2);
        var y = Ops.Conv2d(x, w, T([0.5f], 1));
        Assert.That(y.Shape, Is.EqualTo(new Shape(1, 1, 2, 2)));
        Assert.That(y.ToArray(), Is.EqualTo(new[] { 12.5f, 16.5f, 24.5f, 28.5f }));
    }

    [Test]
    public void ScalarArguments_ApplyToEveryAxis()
    {
        var xd = Rand.Uniform(71, 1 * 2 * 5 * 6 * 7);
        var wd = Rand.Uniform(72, 2 * 2 * 3 * 3 * 3);
        var a = Ops.Conv3d(T(xd, 1, 2, 5, 6, 7), T(wd, 2, 2, 3, 3, 3), null, [2], [1], [1]);
        var b = Ops.Conv3d(T(xd, 1, 2, 5, 6, 7), T(wd, 2, 2, 3, 3, 3), null, [2, 2, 2], [1, 1, 1], [1, 1, 1]);
        Assert.That(a.ToArray(), Is.EqualTo(b.ToArray()));
    }

    // ---- errors -----------------------------------------------------------------------------

    [Test]
    public void WrongWeightShape_SaysWhatTheWeightMustBe()
    {
        var x = Tensor.Zeros(new Shape(2, 4, 5, 7, 6), Device);
        var w = Tensor.Zeros(new Shape(4, 4, 3, 1, 2), Device);
        var e = Assert.Throws<ShapeMismatchException>(() => Ops.Conv3d(x, w, groups: 2));
        Assert.That(e!.Message, Does.Contain("conv3d").And.Contain("[4, 4, 3, 1, 2]").And.Contain("[2, 4, 5, 7, 6]")
            .And.Contain("C/groups = 2").And.Contain("[O, C/groups, kT, kH, kW]"));
    }

    [Test]
    public void WeightOfTheWrongRank_IsRejected()
    {
        var x = Tensor.Zeros(new Shape(1, 3, 5, 5), Device);
        var w = Tensor.Zeros(new Shape(2, 3, 3), Device);
        var e = Assert.Throws<ShapeMismatchException>(() => Ops.Conv2d(x, w));
        Assert.That(e!.Message, Does.Contain("conv2d").And.Contain("[O, C/groups, kH, kW]").And.Contain("[2, 3, 3]"));
    }

    [Test]
    public void ChannelsNotDivisibleByGroups_IsRejected()
    {
        var x = Tensor.Zeros(new Shape(1, 5, 3, 4, 4), Device);
        var w = Tensor.Zeros(new Shape(4, 2, 1, 1, 1), Device);
        var e = Assert.Throws<ShapeMismatchException>(() => Ops.Conv3d(x, w, groups: 2));
        Assert.That(e!.Message, Does.Contain("conv3d").And.Contain("5 channels").And.Contain("not divisible by groups = 2"));
    }

    [Test]
    public void OutputChannelsNotDivisibleByGroups_IsRejected()
    {
        var x = Tensor.Zeros(new Shape(1, 4, 4, 4), Device);
        var w = Tensor.Zeros(new Shape(3, 2, 1, 1), Device);
        var e = Assert.Throws<ShapeMismatchException>(() => Ops.Conv2d(x, w, groups: 2));
        Assert.That(e!.Message, Does.Contain("3 output channels").And.Contain("not divisible by groups = 2"));
    }

    [Test]
    public void BiasOfTheWrongSize_IsRejected()
    {
        var x = Tensor.Zeros(new Shape(1, 2, 4, 4), Device);
        var w = Tensor.Zeros(new Shape(3, 2, 1, 1), Device);
        var b = Tensor.Zeros(new Shape(2), Device);
        var e = Assert.Throws<ShapeMismatchException>(() => Ops.Conv2d(x, w, b));
        Assert.That(e!.Message, Does.Contain("bias [2] must be [3]"));
    }

    [Test]
    public void InputSmallerThanTheDilatedKernel_IsRejected()
    {
        var x = Tensor.Zeros(new Shape(1, 1, 3, 8, 8), Device);
        var w = Tensor.Zeros(new Shape(1, 1, 2, 3, 3), Device);
        var e = Assert.Throws<ShapeMismatchException>(() => Ops.Conv3d(x, w, dilation: [3, 1, 1]));
        Assert.That(e!.Message, Does.Contain("too small").And.Contain(">= 1"));
    }

    [Test]
    public void BadOptions_AreRejected()
    {
        var x = Tensor.Zeros(new Shape(1, 2, 4, 4, 4), Device);
        var w = Tensor.Zeros(new Shape(2, 2, 1, 1, 1), Device);
        Assert.Multiple(() =>
        {
            Assert.That(() => Ops.Conv3d(x, w, stride: [0]), Throws.ArgumentException.With.Message.Contain("stride"));
            Assert.That(() => Ops.Conv3d(x, w, padding: [-1]), Throws.ArgumentException.With.Message.Contain("padding"));
            Assert.That(() => Ops.Conv3d(x, w, dilation: [1, 0, 1]), Throws.ArgumentException.With.Message.Contain("dilation"));
            Assert.That(() => Ops.Conv3d(x, w, stride: [1, 1]), Throws.ArgumentException.With.Message.Contain("3 values"));
            Assert.That(() => Ops.Conv3d(x, w, groups: 0), Throws.InstanceOf<ArgumentOutOfRangeException>());
        });
    }
}
