using Sbp.Autograd;
using Sbp.Engine.Tests.Support;
using Sbp.Memory;
using Sbp.Tensors;

namespace Sbp.Engine.Tests.Reliability;

/// <summary>
/// Out of memory under <see cref="MemoryPool.LimitBytes"/>: the exception says how much was short
/// and what to try, and the pool is consistent afterwards (the failed request holds nothing; freeing
/// tensors and retrying works), whether the failure hits an op, a forward pass or a backward pass.
/// </summary>
public class OutOfMemoryTests : DeviceTest
{
    static long Rounded(long bytes) => Math.Max(MemoryPool.Granularity, (bytes + MemoryPool.Granularity - 1) / MemoryPool.Granularity * MemoryPool.Granularity);

    [Test]
    public void TheExceptionSaysHowMuchWasShortAndWhatToTry()
    {
        var pool = Device.Pool;
        pool.LimitBytes = 64 * 1024;
        using var w = Tensor.Zeros(new Shape(10_000), Device, MemoryCategory.Parameter);
        using var a = Tensor.Zeros(new Shape(5_000), Device);
        long reserved = pool.ReservedBytes;
        var ex = Assert.Throws<DeviceOutOfMemoryException>(() => Tensor.Empty(new Shape(2_500), Device))!;
        Assert.That(ex.ShortBytes, Is.EqualTo(reserved + Rounded(10_000) - 64 * 1024));
        Assert.That(ex.Suggestions, Has.Count.GreaterThanOrEqualTo(4));
        Assert.That(ex.Message, Does.Contain("Short by").And.Contain("keep ratio").And.Contain("Recompute")
            .And.Contain("micro-batches").And.Contain("LimitBytes"));
        // Raising the limit by exactly ShortBytes is enough.
        pool.LimitBytes += ex.ShortBytes;
        using var fits = Tensor.Empty(new Shape(2_500), Device);
        Assert.That(pool.InUseBytes, Is.EqualTo(4 * (10_000 + 5_000 + 2_500)));
    }

    [Test]
    public void ParametersDominatingPutsTheModelSizeFirst()
    {
        Device.Pool.LimitBytes = 8 * 1024;
        using var w = Tensor.Zeros(new Shape(1_500), Device, MemoryCategory.Parameter);
        var ex = Assert.Throws<DeviceOutOfMemoryException>(() => Tensor.Empty(new Shape(1_000), Device))!;
        Assert.That(ex.Suggestions[0], Does.Contain("parameters and optimizer state"));
    }

    [Test]
    public void AFailedOpLeavesThePoolAsItWasAndWorksAfterFreeing()
    {
        var pool = Device.Pool;
        using var a = T(Rand.Uniform(1, 64 * 64), 64, 64);
        var b = T(Rand.Uniform(2, 64 * 64), 64, 64);
        pool.ResetPeak();
        Ops.Matmul(a, b).Dispose();   // the output plus the GEMM's packing workspace
        long peak = pool.Stats().PeakReservedBytes;
        long inUse = pool.InUseBytes, blocks = pool.Stats().LiveBlocks;
        pool.EmptyCache();   // cached blocks would be reused without counting against the limit
        pool.LimitBytes = peak - b.Block.BlockBytes;   // fits only once b is freed
        Assert.Throws<DeviceOutOfMemoryException>(() => Ops.Matmul(a, b));
        Assert.That(pool.InUseBytes, Is.EqualTo(inUse));
        Assert.That(pool.Stats().LiveBlocks, Is.EqualTo(blocks));
        b.Dispose();
        using var c = Ops.Matmul(a, a);
        Assert.That(pool.InUseBytes, Is.EqualTo(inUse));
    }

    [Test]
    public void OutOfMemoryInForwardOrBackwardLeavesOnlyWhatTheCallerHolds()
    {
        var pool = Device.Pool;
        using var w1 = Tensor.FromArray(Rand.Uniform(1, 32 * 16), new Shape(32, 16), Device, MemoryCategory.Parameter);
        using var w2 = Tensor.FromArray(Rand.Uniform(2, 32 * 32), new Shape(32, 32), Device, MemoryCategory.Parameter);
        w1.RequiresGrad = w2.RequiresGrad = true;
        using var x = T(Rand.Uniform(3, 64 * 16), 64, 16);
        long baseline = pool.InUseBytes;
        void Step()
        {
            using var scope = TensorScope.Begin();
            using var tape = Tape.Begin();
            var h = Ops.Gelu(Ops.Linear(x, w1));
            var loss = Ops.Mean(Ops.Mul(Ops.Linear(h, w2), h));
            tape.Backward(loss);
        }
        pool.EmptyCache();
        long reserved = pool.ReservedBytes;
        pool.ResetPeak();
        Step();
        long need = pool.Stats().PeakReservedBytes - reserved;
        int failures = 0, successes = 0;
        // Limits from just above the inputs up to the step's need: it fails at allocations of forward and backward in turn.
        for (long extra = 0; extra <= need; extra += need / 40)
        {
            w1.ZeroGrad();
            w2.ZeroGrad();
            pool.EmptyCache();
            pool.LimitBytes = pool.ReservedBytes + extra;
            try
            {
                Step();
                successes++;
            }
            catch (DeviceOutOfMemoryException e)
            {
                failures++;
                Assert.That(e.ShortBytes, Is.GreaterThan(0));
            }
            long grads = (w1.Grad?.Block.Bytes ?? 0) + (w2.Grad?.Block.Bytes ?? 0);
            Assert.That(pool.InUseBytes, Is.EqualTo(baseline + grads), $"limit +{extra} B: pool holds only inputs, parameters and their gradients");
        }
        pool.LimitBytes = null;
        w1.ZeroGrad();
        w2.ZeroGrad();
        Assert.That(failures, Is.GreaterThan(5), "the sweep hit out-of-memory at several points");
        Assert.That(successes, Is.GreaterThan(0), "the step's measured need fits");
    }
}
