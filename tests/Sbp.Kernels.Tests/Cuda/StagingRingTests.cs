using System.Runtime.InteropServices;
using Sbp.Backends.Cuda;

namespace Sbp.Kernels.Tests.Cuda;

/// <summary>
/// The pinned staging ring that makes host-to-device copies asynchronous on a real GPU, against a fake device whose
/// copies run only when the test lets the "stream" progress: every upload must arrive intact (no ring region reused
/// before the copy that reads it ran), and the host waits only when it runs a whole ring ahead of the device.
/// </summary>
public sealed unsafe class StagingRingTests
{
    /// <summary>A device whose copies are queued and run in order when a fence is waited for or the test advances it.</summary>
    sealed class FakeDevice : IStagingDevice
    {
        readonly Queue<(ulong Destination, nint Source, long Bytes, int Fence)> _queue = new();
        int _fences, _done;
        public byte[] Memory { get; } = new byte[1 << 20];

        public nint AllocatePinned(long bytes) => Marshal.AllocHGlobal((nint)bytes);
        public void FreePinned(nint pointer) => Marshal.FreeHGlobal(pointer);
        public void CopyAsync(ulong destination, nint source, long bytes) => _queue.Enqueue((destination, source, bytes, _fences + 1));
        public nint RecordFence() => ++_fences;
        public bool FenceDone(nint fence) => _done >= fence;
        public void WaitFence(nint fence) => RunUntil((int)fence);
        public void ReleaseFence(nint fence) { }

        /// <summary>The stream runs its copies up to the fence: they read the pinned ring now, as a DMA engine would.</summary>
        public void RunUntil(int fence)
        {
            while (_queue.Count > 0 && _queue.Peek().Fence <= fence)
            {
                var c = _queue.Dequeue();
                new ReadOnlySpan<byte>((void*)c.Source, (int)c.Bytes).CopyTo(Memory.AsSpan((int)c.Destination, (int)c.Bytes));
            }
            _done = Math.Max(_done, fence);
        }

        public void RunAll() => RunUntil(_fences);
    }

    [TestCase(false)]
    [TestCase(true)]
    public void Every_upload_arrives_intact_however_far_the_host_runs_ahead(bool deviceKeepsUp)
    {
        var device = new FakeDevice();
        var rng = new Random(5);
        var expected = new byte[device.Memory.Length];
        using (var ring = new StagingRing(device, capacity: 4096))
        {
            ulong at = 0;
            for (int i = 0; i < 300; i++)
            {
                // Some larger than the ring (sent in pieces, which wait for each other) when the device lags anyway.
                var data = new byte[rng.Next(1, 3000) + (!deviceKeepsUp && i % 50 == 0 ? 5000 : 0)];
                rng.NextBytes(data);
                ring.Upload(at, data);
                data.CopyTo(expected, (int)at);
                Array.Clear(data);                                                  // the caller may reuse its memory at once
                at += (ulong)data.Length;
                if (deviceKeepsUp) device.RunAll();
            }
            device.RunAll();
            Assert.That(device.Memory, Is.EqualTo(expected), "an upload was overwritten in the ring before the device copied it");
            if (deviceKeepsUp) Assert.That(ring.Waits, Is.Zero, "a device that keeps up never makes the host wait");
            else Assert.That(ring.Waits, Is.GreaterThan(0), "a host a whole ring ahead must wait");
        }
    }
}
