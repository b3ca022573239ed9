using Sbp.Engine.Tests.Support;

namespace Sbp.Engine.Tests.OpTests;

/// <summary>Finite-difference checks of softmax and log-softmax along the last, a middle and the first axis.</summary>
public class SoftmaxGradTests
{
    [TestCase(false, -1)]
    [TestCase(false, 2)]
    [TestCase(false, 1)]    // a middle axis: strided rows
    [TestCase(false, 0)]
    [TestCase(true, -1)]
    [TestCase(true, 1)]
    [TestCase(true, -3)]
    public void SoftmaxGradient(bool log, int dim) =>
        GradCheck.Check($"{(log ? "log_softmax" : "softmax")} dim {dim}",
            x => log ? Sbp.Ops.LogSoftmax(x[0], dim) : Sbp.Ops.Softmax(x[0], dim),
            GradInput.Range(191, -2f, 2f, 3, 5, 7));

    [TestCase(false)]
    [TestCase(true)]
    public void SoftmaxOfLargeLogitsGradient(bool log) =>
        // Logits around 40: exp would overflow float32 without the max subtraction.
        GradCheck.Check($"{(log ? "log_softmax" : "softmax")} of logits near 40",
            x => log ? Sbp.Ops.LogSoftmax(x[0]) : Sbp.Ops.Softmax(x[0]),
            GradInput.Range(192, 38f, 42f, 3, 7));
}
