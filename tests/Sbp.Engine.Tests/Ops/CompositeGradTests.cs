using Sbp.Engine.Tests.Support;
using Sbp.Tensors;
using O = Sbp.Ops;

namespace Sbp.Engine.Tests.OpTests;

/// <summary>
/// Gradients through an input used more than once (they must add up) and through chains of ops.
/// </summary>
public class CompositeGradTests
{
    static Tensor Indices(Tensor like, params int[] indices) => Tensor.FromArray(indices, new Shape(indices.Length), like.Device);

    public static IEnumerable<TestCaseData> SharedInput()
    {
        TestCaseData Case(string name, Func<Tensor, Tensor> f, GradInput x) => new TestCaseData(f, x).SetArgDisplayNames(name);
        yield return Case("x * x", x => O.Mul(x, x), GradInput.Uniform(211, 3, 5));
        yield return Case("x + x", x => O.Add(x, x), GradInput.Uniform(212, 3, 5));
        yield return Case("x - x (zero gradient)", x => O.Sub(x, x), GradInput.Uniform(213, 3, 5));
        yield return Case("x / x (zero gradient)", x => O.Div(x, x), GradInput.AwayFromZero(214, 3, 5));
        yield return Case("x ^ x", x => O.Pow(x, x), GradInput.Positive(215, 3, 5));
        yield return Case("concat [x, x] dim 1", x => O.Concat([x, x], 1), GradInput.Uniform(216, 3, 5));
        yield return Case("concat [x, x, x] dim 0", x => O.Concat([x, x, x], 0), GradInput.Uniform(217, 3, 5));
        yield return Case("x @ x^T", x => O.Matmul(x, O.Transpose(x, 0, 1)), GradInput.Uniform(218, 3, 5));
        yield return Case("x (row) + x^T (column), broadcast", x => O.Add(x, O.Reshape(x, 5, 1)), GradInput.Uniform(219, 5));
        yield return Case("exp(x) * x + 3 x", x => O.Add(O.Mul(O.Exp(x), x), O.Mul(x, 3f)), GradInput.Uniform(220, 3, 5));
        // An intermediate (not a leaf) used twice: its gradient is accumulated before its own node runs.
        yield return Case("e = exp(x); e + e", x => { var e = O.Exp(x); return O.Add(e, e); }, GradInput.Uniform(222, 3, 5));
        yield return Case("e = exp(x); e * e", x => { var e = O.Exp(x); return O.Mul(e, e); }, GradInput.Uniform(223, 3, 5));
        yield return Case("r = reshape(x); r + r", x => { var r = O.Reshape(x, 5, 3); return O.Add(r, r); }, GradInput.Uniform(224, 3, 5));
        yield return Case("s = softmax(x); concat [s, s * x]", x => { var s = O.Softmax(x, 1); return O.Concat([s, O.Mul(s, x)], 0); }, GradInput.Uniform(225, 3, 5));
        yield return Case("index_select(x) and x", x => O.Add(O.IndexSelect(x, 0, Indices(x, 2, 2, 0)), x), GradInput.Uniform(221, 3, 5));
    }

    [TestCaseSource(nameof(SharedInput))]
    public void InputUsedTwiceGetsTheSummedGradient(Func<Tensor, Tensor> f, GradInput x) =>
        GradCheck.Check(TestContext.CurrentContext.Test.Name, t => f(t[0]), x);

    [Test]
    public void LogSoftmaxOfLinearOfGelu() =>
        GradCheck.Check("log_softmax(linear(gelu(x), W, b))",
            t => O.LogSoftmax(O.Linear(O.Gelu(t[0]), t[1], t[2]), -1),
            GradInput.Range(231, -2f, 2f, 2, 3, 5), GradInput.Uniform(232, 7, 5), GradInput.Uniform(233, 7));

    [Test]
    public void TwoLayerMlpWithMeanLoss() =>
        // relu applied to inputs kept >= 0.1 from its kink; gelu between the layers.
        GradCheck.Check("mean(linear(gelu(linear(relu(x), W1, b1)), W2))",
            t => O.Mean(O.Linear(O.Gelu(O.Linear(O.Relu(t[0]), t[1], t[2])), t[3])),
            GradInput.AwayFromZero(234, 5, 3), GradInput.Uniform(235, 7, 3), GradInput.Uniform(236, 7), GradInput.Uniform(237, 3, 7));

    [Test]
    public void ScaledDotProductAttention() =>
        // softmax(q k^T / sqrt(d)) v over a batch of 2, 3 queries, 5 keys, head size 4.
        GradCheck.Check("attention",
            t => O.Matmul(O.Softmax(O.Div(O.Matmul(t[0], O.Transpose(t[1], -1, -2)), 2f), -1), t[2]),
            GradInput.Uniform(238, 2, 3, 4), GradInput.Uniform(239, 2, 5, 4), GradInput.Uniform(240, 2, 5, 4));

    [Test]
    public void CrossEntropyFromLogSoftmaxAndIndexSelect() =>
        // -mean(log_softmax(z)[row, target[row]]): a gather of row * 7 + target from the flattened log-probabilities.
        GradCheck.Check("cross entropy",
            t => O.Neg(O.Mean(O.IndexSelect(O.Reshape(O.LogSoftmax(t[0], 1), -1), 0, Indices(t[0], 0 * 7 + 3, 1 * 7 + 0, 2 * 7 + 6, 3 * 7 + 3, 4 * 7 + 1)))),
            GradInput.Range(241, -3f, 3f, 5, 7));

    [Test]
    public void LayerNormWrittenWithPrimitiveOps() =>
        GradCheck.Check("layer norm",
            t =>
            {
                var x = t[0];
                var mu = O.Mean(x, [-1], keepDim: true);
                var centered = O.Sub(x, mu);
                var variance = O.Mean(O.Mul(centered, centered), [-1], keepDim: true);
                return O.Add(O.Mul(O.Div(centered, O.Sqrt(O.Add(variance, 1e-5f))), t[1]), t[2]);
            },
            GradInput.Uniform(242, 3, 7), GradInput.Uniform(243, 7), GradInput.Uniform(244, 7));

    [Test]
    public void PermuteSliceConcatAndSumTo() =>
        GradCheck.Check("layout chain",
            t => O.SumTo(O.Concat([O.Slice(O.Permute(t[0], 2, 0, 1), 0, 1, 3), O.BroadcastTo(t[1], new Shape(2, 3, 5))], 0), new Shape(3, 5)),
            GradInput.Uniform(245, 3, 5, 7), GradInput.Uniform(246, 3, 1));
}
