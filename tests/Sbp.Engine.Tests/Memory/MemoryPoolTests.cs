using Sbp.Memory;
using Sbp.Tensors;

namespace Sbp.Engine.Tests.Memory;

public class MemoryPoolTests
{
    static MemoryPool NewPool() => new("test", new HostAllocator());

    [Test]
    public void InUseCountsRequestedBytesPerCategoryExactly()
    {
        var pool = NewPool();
        var a = pool.Allocate(100, MemoryCategory.Parameter);
        var b = pool.Allocate(1000, MemoryCategory.Gradient);
        var c = pool.Allocate(4, MemoryCategory.OptimizerState);
        var s = pool.Stats();
        Assert.That(s.InUseBytes, Is.EqualTo(1104));
        Assert.That(s.InUse(MemoryCategory.Parameter), Is.EqualTo(100));
        Assert.That(s.InUse(MemoryCategory.Gradient), Is.EqualTo(1000));
        Assert.That(s.InUse(MemoryCategory.OptimizerState), Is.EqualTo(4));
        Assert.That(s.InUse(MemoryCategory.Temporary), Is.EqualTo(0));
        // Blocks are rounded to 512 bytes: 512 + 1024 + 512.
        Assert.That(s.ReservedBytes, Is.EqualTo(2048));
        Assert.That(s.LiveBlocks, Is.EqualTo(3));
        pool.Release(b);
        Assert.That(pool.InUseBytes, Is.EqualTo(104));
        Assert.That(pool.Stats().PeakInUseBytes, Is.EqualTo(1104));
        Assert.That(pool.Stats().PeakByCategory[MemoryCategory.Gradient], Is.EqualTo(1000));
        pool.Release(a);
        pool.Release(c);
        Assert.That(pool.InUseBytes, Is.EqualTo(0));
    }

    [Test]
    public void PyTorchNamedStatisticsFollowThePoolCounters()
    {
        var pool = NewPool();
        var a = pool.Allocate(3000, MemoryCategory.Temporary);
        var b = pool.Allocate(100, MemoryCategory.Parameter);
        pool.Release(a);
        // allocated = in use (requested bytes), reserved = held including the cache (512-byte blocks).
        Assert.That(pool.MemoryAllocated, Is.EqualTo(100));
        Assert.That(pool.MaxMemoryAllocated, Is.EqualTo(3100));
        Assert.That(pool.MemoryReserved, Is.EqualTo(3072 + 512));
        Assert.That(pool.MaxMemoryReserved, Is.EqualTo(3072 + 512));
        var s = pool.Stats();
        Assert.That((s.MemoryAllocated, s.MaxMemoryAllocated, s.MemoryReserved, s.MaxMemoryReserved),
            Is.EqualTo((100L, 3100L, 3584L, 3584L)));
        pool.EmptyCache();
        pool.ResetPeakMemoryStats();
        Assert.That(pool.MaxMemoryAllocated, Is.EqualTo(100));
        Assert.That(pool.MemoryReserved, Is.EqualTo(512));
        Assert.That(pool.MaxMemoryReserved, Is.EqualTo(512));
        pool.Release(b);
    }

    [Test]
    public void FreedBlocksAreCachedAndReused()
    {
        var pool = NewPool();
        var a = pool.Allocate(3000, MemoryCategory.Temporary);
        nint p = a.Pointer;
        pool.Release(a);
        var s = pool.Stats();
        Assert.That(s.InUseBytes, Is.EqualTo(0));
        Assert.That(s.CachedBytes, Is.EqualTo(3072));
        Assert.That(s.ReservedBytes, Is.EqualTo(3072));
        var b = pool.Allocate(2900, MemoryCategory.Workspace); // same 512-byte bucket
        Assert.That(b.Pointer, Is.EqualTo(p));
        Assert.That(pool.Stats().CacheHits, Is.EqualTo(1));
        Assert.That(pool.Stats().CachedBytes, Is.EqualTo(0));
        pool.Release(b);
        pool.EmptyCache();
        Assert.That(pool.Stats().ReservedBytes, Is.EqualTo(0));
    }

    [Test]
    public void ResetPeakStartsFromCurrentUsage()
    {
        var pool = NewPool();
        var a = pool.Allocate(5000, MemoryCategory.Temporary);
        var b = pool.Allocate(700, MemoryCategory.Temporary);
        pool.Release(a);
        Assert.That(pool.PeakInUseBytes, Is.EqualTo(5700));
        pool.ResetPeak();
        Assert.That(pool.PeakInUseBytes, Is.EqualTo(700));
        pool.Release(b);
    }

    [Test]
    public void PeakBlocksAreWhatWasLiveAtThePeak()
    {
        var pool = NewPool();
        Assert.That(pool.PeakBlocks.Blocks, Is.Empty, "off by default");
        pool.CapturePeakBlocks = true;
        var a = pool.Allocate(4000, MemoryCategory.Temporary, "a");
        MemoryBlock b;
        using (OpLabel.Push("conv")) b = pool.Allocate(6000, MemoryCategory.Workspace, "b");
        pool.Release(b);
        var c = pool.Allocate(1000, MemoryCategory.Temporary, "c");   // below the peak: not a new one
        var (blocks, op) = pool.PeakBlocks;
        Assert.That(blocks.Select(x => x.Label), Is.EqualTo(new[] { "b", "a" }));
        Assert.That(blocks.Sum(x => x.Bytes), Is.EqualTo(pool.PeakInUseBytes));
        Assert.That(op, Is.EqualTo("conv"));
        pool.ResetPeak();
        Assert.That(pool.PeakBlocks.Blocks.Select(x => x.Label), Is.EquivalentTo(new[] { "a", "c" }));
        pool.Release(a);
        pool.Release(c);
    }

    [Test]
    public void SnapshotListsLiveBlocksLargestFirstWithTheirOp()
    {
        var pool = NewPool();
        var small = pool.Allocate(10, MemoryCategory.Temporary, "small op");
        MemoryBlock big;
        using (OpLabel.Push("matmul")) big = pool.Allocate(9000, MemoryCategory.Workspace);
        var snap = pool.Snapshot();
        Assert.That(snap, Has.Count.EqualTo(2));
        Assert.That(snap[0].Bytes, Is.EqualTo(9000));
        Assert.That(snap[0].Label, Is.EqualTo("matmul"));
        Assert.That(snap[0].Category, Is.EqualTo(MemoryCategory.Workspace));
        Assert.That(snap[1].Label, Is.EqualTo("small op"));
        pool.Release(small);
        pool.Release(big);
        Assert.That(pool.Snapshot(), Is.Empty);
    }

    [Test]
    public void LimitBelowNeedRaisesOutOfMemoryWithTheBreakdown()
    {
        var pool = NewPool();
        pool.LimitBytes = 64 * 1024;
        var weights = pool.Allocate(40_000, MemoryCategory.Parameter, "weights");
        var acts = pool.Allocate(20_000, MemoryCategory.SavedActivation, "gelu [5000]");
        var ex = Assert.Throws<DeviceOutOfMemoryException>(() => pool.Allocate(10_000, MemoryCategory.Temporary, "linear [2500]"));
        Assert.That(ex!.RequestedBytes, Is.EqualTo(10_000));
        Assert.That(ex.Category, Is.EqualTo(MemoryCategory.Temporary));
        Assert.That(ex.Stats.InUse(MemoryCategory.Parameter), Is.EqualTo(40_000));
        Assert.That(ex.LargestBlocks[0].Label, Is.EqualTo("weights"));
        Assert.That(ex.Message, Does.Contain("tried to allocate").And.Contain("10000 B").And.Contain("linear [2500]"));
        Assert.That(ex.Message, Does.Contain("Parameter 39.06 KiB (40000 B)").And.Contain("SavedActivation 19.53 KiB (20000 B)"));
        Assert.That(ex.Message, Does.Contain("weights").And.Contain("gelu [5000]"));
        Assert.That(ex.Message, Does.Contain("keep ratio").And.Contain("checkpointing"));
        // Nothing changed by the failed request; the pool keeps working.
        Assert.That(pool.InUseBytes, Is.EqualTo(60_000));
        pool.Release(acts);
        var retry = pool.Allocate(10_000, MemoryCategory.Temporary);
        Assert.That(pool.InUseBytes, Is.EqualTo(50_000));
        pool.Release(retry);
        pool.Release(weights);
    }

    [Test]
    public void LimitReleasesTheCacheBeforeFailing()
    {
        var pool = NewPool();
        pool.LimitBytes = 8192;
        var a = pool.Allocate(6000, MemoryCategory.Temporary);
        pool.Release(a); // 6144 bytes cached
        var b = pool.Allocate(4000, MemoryCategory.Temporary); // needs the cache emptied to fit
        Assert.That(pool.Stats().ReservedBytes, Is.EqualTo(4096));
        pool.Release(b);
    }

    [Test]
    public void TensorsCountUnderTheirCategoryAndReturnOnDispose()
    {
        var device = Device.CreateCpu("tensors");
        using (var p = Tensor.Zeros(new Shape(3, 5), device, MemoryCategory.Parameter))
        using (var t = Tensor.Ones(new Shape(7), device))
        {
            Assert.That(device.Pool.InUse(MemoryCategory.Parameter), Is.EqualTo(60));
            Assert.That(device.Pool.InUse(MemoryCategory.Temporary), Is.EqualTo(28));
        }
        Assert.That(device.Pool.InUseBytes, Is.EqualTo(0));
    }
}
