using Sbp.Tensors;

namespace Sbp.Kernels.Tests.Cuda;

/// <summary>
/// A bad index in IndexSelect or IndexAdd on CUDA is the CPU's error, never a silent NaN: the indices are checked on
/// the device (no host read in the op) and the error is raised at the host's next read of device memory.
/// </summary>
public sealed class CudaIndexErrorTests : CudaTest
{
    [TestCase(7)]
    [TestCase(-1)]
    public void IndexSelectWithAnIndexOutOfRangeRaisesTheCpusErrorAtTheNextRead(int bad)
    {
        var x = Pair(Rand.Uniform(1, 5 * 4), 5, 4);
        var idx = PairInt([0, 2, bad, 1], 4);
        var cpuError = Assert.Throws<IndexOutOfRangeException>(() => Cpu.Backend.IndexSelect(x.Cpu, 0, idx.Cpu, Tensor.Empty(new Shape(4, 4), Cpu)))!;
        var y = Tensor.Empty(new Shape(4, 4), Gpu);
        Gpu.Backend.IndexSelect(x.Gpu, 0, idx.Gpu, y);   // queued: nothing is read yet
        var e = Assert.Throws<IndexOutOfRangeException>(() => y.ToArray())!;
        Assert.That(e.Message, Does.StartWith(cpuError.Message.TrimEnd('.')), "the CPU's words: op, index, position, size");
        Assert.That(e.Message, Does.Contain("found on the device"));
        // The error is reported once; the next calls work.
        var good = PairInt([4, 0], 2);
        var z = Tensor.Empty(new Shape(2, 4), Gpu);
        Gpu.Backend.IndexSelect(x.Gpu, 0, good.Gpu, z);
        Assert.That(z.ToArray(), Is.EqualTo(x.Cpu.ToArray()[16..20].Concat(x.Cpu.ToArray()[0..4]).ToArray()));
    }

    [Test]
    public void The_engines_own_index_lists_are_not_checked_again()
    {
        SimulatorOnly();
        var x = Tensor.FromArray(Rand.Uniform(3, 6 * 2), new Shape(6, 2), Gpu);
        var kept = Tensor.FromArray(new[] { 1, 3, 5 }, new Shape(3), Gpu);
        int Checks() => Sbp.CudaSim.SimulatedCuda.Launches(Gpu).GetValueOrDefault("check_indices_i32");
        int before = Checks();
        using (var y = Tensor.Empty(new Shape(3, 2), Gpu)) Gpu.Backend.IndexSelect(x, 0, kept, y);
        Assert.That(Checks(), Is.EqualTo(before + 1), "a user's indices are checked");
        kept.IndexBound = 6;   // as SBP's ledger marks its kept positions
        using (var y = Tensor.Empty(new Shape(3, 2), Gpu)) Gpu.Backend.IndexSelect(x, 0, kept, y);
        using (var d = Tensor.Zeros(new Shape(6, 2), Gpu)) Gpu.Backend.IndexAdd(d, 0, kept, Tensor.Zeros(new Shape(3, 2), Gpu));
        Assert.That(Checks(), Is.EqualTo(before + 1), "SBP's kept positions are valid by construction");
        using (var y = Tensor.Empty(new Shape(3, 2), Gpu)) Gpu.Backend.IndexSelect(Tensor.Zeros(new Shape(4, 2), Gpu), 0, kept, y);
        Assert.That(Checks(), Is.EqualTo(before + 2), "a bound above the indexed size is checked");
        Assert.That(() => x.ToArray(), Throws.InstanceOf<IndexOutOfRangeException>(), "index 5 of a dimension of 4, raised at the next read");
    }

    [Test]
    public void IndexAddWithAnIndexOutOfRangeRaisesAtTheNextReadOfAnyTensor()
    {
        var dst = Tensor.Zeros(new Shape(3, 2), Gpu);
        var src = Tensor.FromArray(Rand.Uniform(2, 4 * 2), new Shape(4, 2), Gpu);
        var idx = Tensor.FromArray(new[] { 0, 1, 3, 2 }, new Shape(4), Gpu);
        Gpu.Backend.IndexAdd(dst, 0, idx, src);
        var other = Tensor.Full(new Shape(1), 5f, Gpu);
        var e = Assert.Throws<IndexOutOfRangeException>(() => other.Item())!;
        Assert.That(e.Message, Does.StartWith("index_add: index 3 at position 2 is out of range for a dimension of size 3 (valid: 0..2)"));
    }
}
