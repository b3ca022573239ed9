using Sbp.Autograd;
using Sbp.Engine.Tests.Support;
using Sbp.Memory;
using Sbp.Optim;
using Sbp.Tensors;

namespace Sbp.Engine.Tests.Optim;

public class GradClipTests : DeviceTest
{
    Tensor ParamWithGrad(float[] grad, params int[] shape)
    {
        var p = T(new float[grad.Length], shape);
        p.RequiresGrad = true;
        p.Grad = Tensor.FromArray(grad, p.Shape, Device, MemoryCategory.Gradient).DetachFromScope();
        return p;
    }

    [Test]
    public void ClipsToMaxNormWithFloat64Norm()
    {
        var g = new[] { Rand.Normal(1, 15, 3f), Rand.Normal(2, 7), Rand.Normal(3, 1, 5f) };
        var ps = new[] { ParamWithGrad(g[0], 3, 5), ParamWithGrad(g[1], 7), ParamWithGrad(g[2], 1) };
        var noGrad = T([1f, 2f], 2);
        noGrad.RequiresGrad = true;
        double norm = Math.Sqrt(g.SelectMany(a => a).Sum(v => (double)v * v));

        float maxNorm = (float)(norm / 2);
        float total = GradClip.ClipByGlobalNorm(ps.Append(noGrad), maxNorm);
        Assert.That(total, Is.EqualTo((float)norm));
        double coef = maxNorm / (norm + 1e-6);
        for (int j = 0; j < ps.Length; j++)
            Assert.That(ps[j].Grad!.ToArray(), Is.EqualTo(g[j].Select(v => v * coef)).Within(1e-6));
        Assert.That(GradClip.GlobalNorm(ps), Is.EqualTo(maxNorm).Within(1e-5));
        Assert.That(noGrad.Grad, Is.Null);
    }

    [Test]
    public void BelowMaxNormLeavesGradientsUntouched()
    {
        var g = Rand.Normal(4, 9);
        var p = ParamWithGrad(g, 9);
        double norm = Math.Sqrt(g.Sum(v => (double)v * v));
        float total = GradClip.ClipByGlobalNorm([("p", p)], (float)norm * 2);
        Assert.That(total, Is.EqualTo((float)norm));
        Assert.That(p.Grad!.ToArray(), Is.EqualTo(g));
    }

    [Test]
    public void NonFiniteNormThrowsWhenAsked()
    {
        var p = ParamWithGrad([1f, float.NaN, 2f], 3);
        Assert.That(() => GradClip.ClipByGlobalNorm([p], 1f, errorIfNonfinite: true),
            Throws.InvalidOperationException.With.Message.Contains("NaN"));
        Assert.That(p.Grad!.ToArray()[0], Is.EqualTo(1f), "nothing scaled");
    }

    [Test]
    public void LargeTensorNormUsesFloat64Accumulation()
    {
        // 200 003 elements over several chunks: float32 accumulation would drift; float64 does not.
        const int n = 200_003;
        var g = Rand.Uniform(5, n);
        var p = ParamWithGrad(g, n);
        double expected = Math.Sqrt(g.Sum(v => (double)v * v));
        Assert.That(GradClip.GlobalNorm([p]), Is.EqualTo(expected).Within(1e-9 * expected));
    }

    /// <summary>
    /// Gradient accumulation: k micro-batches, each backpropagating loss / k under its own tape,
    /// sum into Grad to the gradient of one step on the whole batch (mean-reduced loss).
    /// </summary>
    [Test]
    public void MicroBatchAccumulationEqualsOneBatch()
    {
        const int n = 12, inF = 5, outF = 3, k = 3;
        var w = T(Rand.Normal(1, outF * inF, 0.5f), outF, inF);
        var b = T(Rand.Normal(2, outF), outF);
        w.RequiresGrad = b.RequiresGrad = true;
        var x = T(Rand.Normal(3, n * inF), n, inF);
        var labels = Enumerable.Range(0, n).Select(i => (i * 7) % outF).ToArray();
        var y = Idx(labels);

        using (var tape = Tape.Begin())
            tape.Backward(Ops.CrossEntropy(Ops.Gelu(Ops.Linear(x, w, b)), y));
        var fullW = w.Grad!.ToArray();
        var fullB = b.Grad!.ToArray();
        w.ZeroGrad();
        b.ZeroGrad();

        for (int m = 0; m < k; m++)
        {
            using var scope = TensorScope.Begin();
            var rows = Enumerable.Range(m * n / k, n / k).ToArray();
            using var tape = Tape.Begin();
            var loss = Ops.CrossEntropy(Ops.Gelu(Ops.Linear(Ops.IndexSelect(x, 0, Idx(rows)), w, b)), Idx(rows.Select(r => labels[r]).ToArray()));
            tape.Backward(Ops.Div(loss, k));
        }
        Assert.That(w.Grad!.ToArray(), Is.EqualTo(fullW).Within(1e-6));
        Assert.That(b.Grad!.ToArray(), Is.EqualTo(fullB).Within(1e-6));
    }
}
