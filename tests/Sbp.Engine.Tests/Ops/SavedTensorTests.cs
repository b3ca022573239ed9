using Sbp.Autograd;
using Sbp.Engine.Tests.Support;
using Sbp.Tensors;

namespace Sbp.Engine.Tests.OpTests;

/// <summary>
/// An op saves for backward only what the gradients it will compute read: with a frozen weight, a
/// linear layer must not hold its input (the memory SBP and frozen backbones are about). Each case
/// names the saved slots: an input's name, "y" for the output, "-" for nothing, "stat" for another tensor.
/// </summary>
public class SavedTensorTests : DeviceTest
{
    Tensor Leaf(int seed, bool grad, params int[] shape)
    {
        var t = T(Rand.Uniform(seed, shape.Aggregate(1, (p, d) => p * d), 0.5f, 1.5f), shape);
        t.RequiresGrad = grad;
        return t;
    }

    string SavedBy(Func<Dictionary<string, Tensor>, Tensor> op, params (string Name, int[] Shape, bool Grad)[] inputs)
    {
        var named = inputs.Select((x, i) => (x.Name, Tensor: Leaf(i + 1, x.Grad, x.Shape))).ToDictionary(x => x.Name, x => x.Tensor);
        using var tape = Tape.Begin();
        var y = op(named);
        var node = tape.Nodes.Single();
        string Name(Tensor? s) => s is null ? "-" : s.Block.Id == y.Block.Id ? "y" : named.FirstOrDefault(n => n.Value.Block.Id == s.Block.Id).Key ?? "stat";
        return string.Join(", ", node.SavedTensors.Select(Name));
    }

    [TestCase(true, false, "-, b")]
    [TestCase(false, true, "a, -")]
    [TestCase(true, true, "a, b")]
    public void MatmulSavesTheOtherOperandOfEachGradient(bool aGrad, bool bGrad, string saved)
    {
        Assert.That(SavedBy(t => Ops.Matmul(t["a"], t["b"]), ("a", [3, 4], aGrad), ("b", [4, 5], bGrad)), Is.EqualTo(saved), "2-D");
        Assert.That(SavedBy(t => Ops.Matmul(t["a"], t["b"]), ("a", [2, 3, 4], aGrad), ("b", [2, 4, 5], bGrad)), Is.EqualTo(saved), "batched");
    }

    [TestCase(true, false, "-, w")]
    [TestCase(false, true, "x, -")]
    public void LinearWithAFrozenSideSavesOnlyWhatTheOtherGradientReads(bool xGrad, bool wGrad, string saved) =>
        Assert.That(SavedBy(t => Ops.Linear(t["x"], t["w"], t["b"]), ("x", [3, 4], xGrad), ("w", [5, 4], wGrad), ("b", [5], wGrad)), Is.EqualTo(saved));

    [TestCase(true, false, "-, b")]
    [TestCase(false, true, "a, b")]
    public void DivSavesTheNumeratorOnlyForTheDenominatorsGradient(bool aGrad, bool bGrad, string saved) =>
        Assert.That(SavedBy(t => Ops.Div(t["a"], t["b"]), ("a", [3, 4], aGrad), ("b", [3, 4], bGrad)), Is.EqualTo(saved));

    [TestCase(true, false, "a, b, -")]
    [TestCase(false, true, "a, b, y")]
    public void PowSavesItsOutputOnlyForTheExponentsGradient(bool aGrad, bool bGrad, string saved) =>
        Assert.That(SavedBy(t => Ops.Pow(t["a"], t["b"]), ("a", [3, 4], aGrad), ("b", [3, 4], bGrad)), Is.EqualTo(saved));

    [TestCase(true, "x, stat, stat, g")]
    [TestCase(false, "x, stat, stat, -")]
    public void LayerNormSavesItsWeightOnlyForTheInputsGradient(bool xGrad, string saved) =>
        Assert.That(SavedBy(t => Ops.LayerNorm(t["x"], [4], t["g"], t["b"]), ("x", [3, 4], xGrad), ("g", [4], true), ("b", [4], true)), Is.EqualTo(saved));

    [TestCase(BatchNormMode.Train, true, true, "x, stat, stat, g")]
    [TestCase(BatchNormMode.Train, false, true, "x, stat, stat, -")]
    [TestCase(BatchNormMode.Eval, true, true, "x, stat, stat, g")]
    [TestCase(BatchNormMode.Eval, true, false, "-, stat, stat, g")]
    [TestCase(BatchNormMode.Eval, false, true, "x, stat, stat, -")]
    public void BatchNormSavesItsInputForTheWeightsGradientAndItsWeightForTheInputs(BatchNormMode mode, bool xGrad, bool gGrad, string saved)
    {
        var mean = T([0.1f, -0.2f], 2);
        var variance = T([1.5f, 0.5f], 2);
        Assert.That(SavedBy(t => Ops.BatchNorm(t["x"], t["g"], t["b"], mean, variance, mode), ("x", [4, 2, 3], xGrad), ("g", [2], gGrad), ("b", [2], gGrad)),
            Is.EqualTo(saved));
    }
}
