using Sbp.Autograd;
using Sbp.Engine.Tests.Support;
using Sbp.Memory;
using Sbp.Tensors;

namespace Sbp.Engine.Tests.Nn.Norm;

/// <summary>A layer-norm configuration: the input shape, how many trailing dims are normalized, and which affine parameters exist.</summary>
public sealed record LayerNormCase(string Name, int[] X, int NormDims, bool Weight, bool Bias)
{
    public int[] Normalized => X[^NormDims..];

    public GradInput[] Inputs(int seed)
    {
        var list = new List<GradInput> { GradInput.Uniform(seed, X) };
        if (Weight) list.Add(GradInput.Range(seed + 1, 0.5f, 1.5f, Normalized));
        if (Bias) list.Add(GradInput.Uniform(seed + 2, Normalized));
        return [.. list];
    }

    public Tensor Run(Tensor[] xs) =>
        Ops.LayerNorm(xs[0], Normalized, Weight ? xs[1] : null, Bias ? xs[Weight ? 2 : 1] : null);

    public override string ToString() => Name;
}

public sealed class LayerNormTests : DeviceTest
{
    public static readonly LayerNormCase[] Cases =
    [
        new("last dim affine [4, 7]", [4, 7], 1, true, true),
        new("last dim no affine [3, 5, 7]", [3, 5, 7], 1, false, false),
        new("two dims affine [3, 5, 7]", [3, 5, 7], 2, true, true),
        new("two dims no affine [2, 3, 5]", [2, 3, 5], 2, false, false),
        new("weight only [5, 3]", [5, 3], 1, true, false),
        new("bias only [3, 5]", [3, 5], 1, false, true),
        new("all dims [3, 5]", [3, 5], 2, true, true),
    ];

    [TestCaseSource(nameof(Cases))]
    public void Gradients_MatchFiniteDifferences(LayerNormCase c) =>
        GradCheck.Check("layer_norm " + c.Name, c.Run, c.Inputs(11));

    [Test]
    public void Gradients_OnlyAffineNeedsGrad()
    {
        var c = new LayerNormCase("affine only", [3, 5, 7], 2, true, true);
        var inputs = c.Inputs(21);
        inputs[0] = inputs[0].Constant();
        GradCheck.Check("layer_norm affine only", c.Run, inputs);
    }

    [Test]
    public void Gradients_OnlyInputNeedsGrad()
    {
        var c = new LayerNormCase("x only", [4, 7], 1, true, true);
        var inputs = c.Inputs(31);
        inputs[1] = inputs[1].Constant();
        inputs[2] = inputs[2].Constant();
        GradCheck.Check("layer_norm x only", c.Run, inputs);
    }

    [TestCase(1)]
    [TestCase(2)]
    public void Gradients_OnlyBiasNeedsGrad_SavesNothing(int normDims)
    {
        var c = new LayerNormCase("bias only grad", [3, 5, 7], normDims, true, true);
        var inputs = c.Inputs(41);
        inputs[0] = inputs[0].Constant();
        inputs[1] = inputs[1].Constant();
        GradCheck.Check($"layer_norm bias only grad ({normDims} dims)", c.Run, inputs);

        var x = T(inputs[0].Data, c.X);
        var w = T(inputs[1].Data, c.Normalized);
        var b = T(inputs[2].Data, c.Normalized);
        b.RequiresGrad = true;
        using var tape = Tape.Begin();
        Ops.LayerNorm(x, c.Normalized, w, b);
        Assert.That(tape.Nodes.Single().SavedBytes, Is.Zero, "dbias needs neither x nor the statistics");
        Assert.That(tape.SavedBytes, Is.Zero);
    }

    [Test]
    public void Gradients_AllDimsNormalized_OnlyBiasNeedsGrad() =>
        GradCheck.Check("layer_norm all dims bias only", xs => Ops.LayerNorm(xs[0], [3, 5], null, xs[1]),
            GradInput.Uniform(51, 3, 5).Constant(), GradInput.Uniform(52, 3, 5));

    [Test]
    public void EmptyBatch_GivesEmptyOutputAndZeroParameterGradients()
    {
        var x = T([], 0, 5);
        x.RequiresGrad = true;
        var w = T(Rand.Uniform(53, 5), 5);
        var b = T(Rand.Uniform(54, 5), 5);
        w.RequiresGrad = b.RequiresGrad = true;
        using (var tape = Tape.Begin())
        {
            var y = Ops.LayerNorm(x, [5], w, b);
            Assert.That(y.Shape, Is.EqualTo(new Shape(0, 5)));
            tape.Backward(Ops.Sum(y));
        }
        Assert.That(w.Grad!.ToArray(), Is.EqualTo(new float[5]));
        Assert.That(b.Grad!.ToArray(), Is.EqualTo(new float[5]));
        Assert.That(x.Grad!.Shape, Is.EqualTo(new Shape(0, 5)));
        x.ZeroGrad();
        w.ZeroGrad();
        b.ZeroGrad();
    }

    [TestCaseSource(nameof(Cases))]
    public void Forward_MatchesFloat64Reference(LayerNormCase c)
    {
        var xd = Rand.Normal(3, Ref.Numel(c.X), 2f);
        for (int i = 0; i < xd.Length; i++) xd[i] += 3f;   // an offset mean, as real activations have
        var wd = Rand.Uniform(4, Ref.Numel(c.Normalized));
        var bd = Rand.Uniform(5, Ref.Numel(c.Normalized));
        var y = Ops.LayerNorm(T(xd, c.X), c.Normalized, c.Weight ? T(wd, c.Normalized) : null, c.Bias ? T(bd, c.Normalized) : null);
        var expected = NormReference.LayerNorm(RefTensor.Of(xd, c.X), c.NormDims,
            c.Weight ? RefTensor.Of(wd, c.Normalized) : null, c.Bias ? RefTensor.Of(bd, c.Normalized) : null);
        Ref.AssertClose("layer_norm " + c.Name, y, expected, rtol: 1e-4, atol: 1e-5);
    }

    [Test]
    public void Forward_CustomEps()
    {
        var xd = Rand.Uniform(6, 12, -0.01f, 0.01f);
        var y = Ops.LayerNorm(T(xd, 3, 4), [4], eps: 1e-3f);
        Ref.AssertClose("layer_norm eps 1e-3", y, NormReference.LayerNorm(RefTensor.Of(xd, 3, 4), 1, null, null, 1e-3), rtol: 1e-4, atol: 1e-5);
    }

    [Test]
    public void SavesInputMeanAndRstdOnly()
    {
        var x = T(Rand.Uniform(7, 3 * 5 * 7), 3, 5, 7);
        x.RequiresGrad = true;
        var w = Tensor.FromArray(Rand.Uniform(8, 35), new Shape(5, 7), Device, MemoryCategory.Parameter);
        var b = Tensor.FromArray(Rand.Uniform(9, 35), new Shape(5, 7), Device, MemoryCategory.Parameter);
        w.RequiresGrad = true;
        b.RequiresGrad = true;
        using var tape = Tape.Begin();
        var y = Ops.LayerNorm(x, [5, 7], w, b);
        var node = tape.Nodes.Single();
        Assert.That(node.Op, Is.EqualTo("layer_norm"));
        // x (counted) + mean and rstd (3 rows each); the weight is a parameter, not an activation.
        Assert.That(node.SavedBytes, Is.EqualTo(x.Bytes + 2 * 3 * sizeof(float)));
        tape.Backward(Ops.Sum(y));
        Assert.That(w.Grad, Is.Not.Null);
        Assert.That(b.Grad!.ToArray(), Is.EqualTo(Enumerable.Repeat(3f, 35).ToArray()));
        w.Dispose();
        b.Dispose();
    }

    [Test]
    public void Errors_NameTheShapes()
    {
        var x = T(new float[24], 2, 3, 4);
        var ex = Assert.Throws<ShapeMismatchException>(() => Ops.LayerNorm(x, [3]));
        Assert.That(ex!.Message, Does.Contain("layer_norm").And.Contain("[3]").And.Contain("[2, 3, 4]"));
        Assert.Throws<ShapeMismatchException>(() => Ops.LayerNorm(x, [1, 2, 3, 4]));
        Assert.Throws<ShapeMismatchException>(() => Ops.LayerNorm(x, []));
        var wrongWeight = T(new float[3], 3);
        ex = Assert.Throws<ShapeMismatchException>(() => Ops.LayerNorm(x, [4], wrongWeight));
        Assert.That(ex!.Message, Does.Contain("weight").And.Contain("[4]"));
        Assert.Throws<ShapeMismatchException>(() => Ops.LayerNorm(x, [3, 4], null, T(new float[4], 4)));
        Assert.Throws<ArgumentOutOfRangeException>(() => Ops.LayerNorm(x, [4], eps: 0f));
    }
}
