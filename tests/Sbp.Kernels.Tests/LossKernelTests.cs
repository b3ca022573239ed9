using Sbp.Kernels.Tests.Support;
using Sbp.Tensors;

namespace Sbp.Kernels.Tests;

/// <summary>kernels/loss.ptx against CpuBackend.CrossEntropyForward / CrossEntropyBackward.</summary>
public sealed class LossKernelTests : KernelTest
{
    // rows, classes, label smoothing, class weights, block
    [TestCase(3, 5, 0f, false, 32u)]
    [TestCase(3, 5, 0.1f, false, 32u)]
    [TestCase(4, 37, 0f, true, 64u)]
    [TestCase(4, 37, 0.2f, true, 64u)]
    [TestCase(2, 300, 0.1f, false, 128u)]
    [TestCase(7, 1, 0.3f, true, 32u)]
    public void ForwardMatchesCpu(int rows, int classes, float eps, bool weighted, uint block)
    {
        var z = Rand.Normal(1, rows * classes, 3f);
        var y = Rand.Ints(2, rows, 0, classes);
        var w = weighted ? Rand.Uniform(3, classes, 0.2f, 2f) : null;
        var (loss, lse) = (Empty(rows), Empty(rows));
        Device.Backend.CrossEntropyForward(T(z, rows, classes), I(y, rows), Opt(w, classes), eps, loss, lse);

        ulong gl = Gpu.Poisoned(rows), gs = Gpu.Poisoned(rows);
        Gpu.Launch("cross_entropy_f32", Math.Min((uint)rows, 3u), block,
            Ptr(Gpu.Upload(z)), Ptr(Gpu.Upload(y)), Ptr(Up(w)), Ptr(gl), Ptr(gs), U32(rows), U32(classes), F32(eps), U32(0));
        Check.Close(lse.ToArray(), Gpu.Download(gs, rows), 1e-5, 1e-5, "cross_entropy_f32 lse");
        Check.Close(loss.ToArray(), Gpu.Download(gl, rows), 1e-5, 1e-5, "cross_entropy_f32 loss");
    }

    [TestCase(3, 5, 0f, false, true, 32u)]
    [TestCase(3, 5, 0.1f, false, false, 32u)]
    [TestCase(4, 37, 0f, true, true, 64u)]
    [TestCase(4, 37, 0.2f, true, false, 64u)]
    [TestCase(2, 300, 0.1f, true, true, 128u)]
    public void BackwardMatchesCpu(int rows, int classes, float eps, bool weighted, bool perRow, uint block)
    {
        var z = Rand.Normal(4, rows * classes, 3f);
        var y = Rand.Ints(5, rows, 0, classes);
        var w = weighted ? Rand.Uniform(6, classes, 0.2f, 2f) : null;
        var g = perRow ? Rand.Uniform(7, rows, 0.1f, 1f) : [0.37f];
        var (loss, lse, dz) = (Empty(rows), Empty(rows), Empty(rows, classes));
        var zt = T(z, rows, classes);
        var yt = I(y, rows);
        Device.Backend.CrossEntropyForward(zt, yt, Opt(w, classes), eps, loss, lse);
        Device.Backend.CrossEntropyBackward(zt, yt, Opt(w, classes), eps, lse, T(g, g.Length), dz);

        ulong gdz = Gpu.Poisoned(rows * classes);
        Gpu.Launch("cross_entropy_bwd_f32", Math.Min((uint)rows, 2u), block,
            Ptr(Gpu.Upload(z)), Ptr(Gpu.Upload(y)), Ptr(Up(w)), Ptr(Gpu.Upload(lse.ToArray())), Ptr(Gpu.Upload(g)), Ptr(gdz),
            U32(rows), U32(classes), F32(eps), U32(perRow ? 1 : 0), U32(0));
        Check.Close(dz.ToArray(), Gpu.Download(gdz, rows * classes), 1e-5, 1e-6, "cross_entropy_bwd_f32");
    }

    [Test]
    public void AnInvalidTargetGivesANaNRowWithoutTouchingMemory()
    {
        int rows = 3, classes = 4;
        var z = Rand.Normal(8, rows * classes);
        int[] y = [1, 4, -1];
        ulong pz = Gpu.Upload(z), py = Gpu.Upload(y), loss = Gpu.Zeros(rows), lse = Gpu.Zeros(rows), dz = Gpu.Zeros(rows * classes);
        Gpu.Launch("cross_entropy_f32", 2, 32, Ptr(pz), Ptr(py), Ptr(0), Ptr(loss), Ptr(lse), U32(rows), U32(classes), F32(0f), U32(0));
        var l = Gpu.Download(loss, rows);
        Assert.That(l[0], Is.Not.NaN);
        Assert.That(l[1], Is.NaN);
        Assert.That(l[2], Is.NaN);
        Gpu.Launch("cross_entropy_bwd_f32", 2, 32, Ptr(pz), Ptr(py), Ptr(Gpu.Upload(Rand.Uniform(9, classes, 0.5f, 1f))), Ptr(lse), Ptr(Gpu.Upload([1f])), Ptr(dz),
            U32(rows), U32(classes), F32(0.1f), U32(0), U32(0));
        var d = Gpu.Download(dz, rows * classes);
        Assert.That(d[..classes].All(float.IsFinite), Is.True, "valid row");
        Assert.That(d[classes..].All(float.IsNaN), Is.True, "rows with invalid targets");
    }

    Tensor? Opt(float[]? data, int n) => data is null ? null : T(data, n);
    ulong Up(float[]? data) => data is null ? 0 : Gpu.Upload(data);
}
