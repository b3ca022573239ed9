using Sbp.Engine.Tests.Support;

namespace Sbp.Engine.Tests.OpTests;

/// <summary>Forward values of softmax and log-softmax against float64.</summary>
public class SoftmaxForwardTests : DeviceTest
{
    [TestCase(false, -1)]
    [TestCase(false, 1)]
    [TestCase(false, 0)]
    [TestCase(true, -1)]
    [TestCase(true, 1)]
    [TestCase(true, 0)]
    public void SoftmaxMatchesFloat64(bool log, int dim)
    {
        var x = Rand.Normal(201, 3 * 5 * 7, 2f);
        var y = log ? Sbp.Ops.LogSoftmax(T(x, 3, 5, 7), dim) : Sbp.Ops.Softmax(T(x, 3, 5, 7), dim);
        Ref.AssertClose(log ? "log_softmax" : "softmax", y, Ref.Softmax(RefTensor.Of(x, 3, 5, 7), dim, log), 1e-5, 1e-5);
    }

    [TestCase(false)]
    [TestCase(true)]
    public void ExtremeLogitsStayFinite(bool log)
    {
        // Rows with logits of ±90 and a spread of 180: exp(90) overflows float32.
        float[] x = [90f, 89f, -90f, 0f, 88.5f, -90f, -89f, -90f, -88f, -89.5f];
        var y = log ? Sbp.Ops.LogSoftmax(T(x, 2, 5)) : Sbp.Ops.Softmax(T(x, 2, 5));
        Ref.AssertClose(log ? "log_softmax" : "softmax", y, Ref.Softmax(RefTensor.Of(x, 2, 5), -1, log), 1e-5, 1e-5);
    }

    [TestCase(false, 1)]
    [TestCase(true, -1)]
    public void LargeOddSoftmaxMatchesFloat64(bool log, int dim)
    {
        // 13 * 129 * 67 elements: parallel rows, strided when dim is the middle axis.
        var x = Rand.Normal(202, 13 * 129 * 67, 3f);
        var y = log ? Sbp.Ops.LogSoftmax(T(x, 13, 129, 67), dim) : Sbp.Ops.Softmax(T(x, 13, 129, 67), dim);
        Ref.AssertClose(log ? "log_softmax" : "softmax", y, Ref.Softmax(RefTensor.Of(x, 13, 129, 67), dim, log), 1e-5, 1e-5);
    }

    [Test]
    public void SoftmaxRowsSumToOne()
    {
        var y = Sbp.Ops.Softmax(T(Rand.Normal(203, 5 * 7), 5, 7), 1);
        Ref.AssertClose("sum of softmax rows", Sbp.Ops.Sum(y, [1]), new RefTensor(Enumerable.Repeat(1.0, 5).ToArray(), [5]), 0, 1e-6);
    }
}
