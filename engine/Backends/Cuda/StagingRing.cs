namespace Sbp.Backends.Cuda;

/// <summary>What <see cref="StagingRing"/> needs from the device: pinned host memory, an asynchronous copy on the stream,
/// and fences (events) that say when the copies before them are done.</summary>
internal interface IStagingDevice
{
    nint AllocatePinned(long bytes);
    void FreePinned(nint pointer);
    /// <summary>Queues a copy of <paramref name="bytes"/> from pinned host memory to the device on the stream.</summary>
    void CopyAsync(ulong destination, nint source, long bytes);
    /// <summary>A fence after the work queued so far.</summary>
    nint RecordFence();
    bool FenceDone(nint fence);
    /// <summary>Blocks until the fence's work is done (the one host wait a staged upload can cost: a full ring).</summary>
    void WaitFence(nint fence);
    void ReleaseFence(nint fence);
}

/// <summary>
/// Host-to-device uploads that never wait for the stream: the bytes are copied into a ring of pinned host memory, and the
/// device copies them from there when the stream reaches the copy (a copy from pageable memory makes the host wait for
/// every kernel queued before it). The caller's memory may be reused as soon as <see cref="Upload"/> returns. A ring
/// region is reused only after the copy that read it is done: when the host runs a whole ring ahead of the device, it
/// waits (counted in <see cref="Waits"/>). Uploads larger than half the ring go in pieces (one larger than the ring waits for its own first pieces).
/// </summary>
internal sealed unsafe class StagingRing(IStagingDevice device, long capacity = StagingRing.DefaultCapacity) : IDisposable
{
    public const long DefaultCapacity = 8L << 20;
    const long Align = 256;

    readonly Queue<(long Start, long End, nint Fence)> _inFlight = new();
    nint _buffer;
    long _head;

    /// <summary>How often the host waited for the device to free ring space.</summary>
    public int Waits { get; private set; }

    public void Upload(ulong destination, ReadOnlySpan<byte> source)
    {
        long piece = capacity / 2;
        for (long at = 0; at < source.Length; at += piece)
        {
            var part = source.Slice((int)at, (int)Math.Min(piece, source.Length - at));
            long start = Reserve(part.Length);
            part.CopyTo(new Span<byte>((byte*)_buffer + start, part.Length));
            device.CopyAsync(destination + (ulong)at, _buffer + (nint)start, part.Length);
            _inFlight.Enqueue((start, start + part.Length, device.RecordFence()));
        }
    }

    /// <summary>The next free region of <paramref name="bytes"/>: copies that still read it are waited for first.</summary>
    long Reserve(long bytes)
    {
        if (_buffer == 0) _buffer = device.AllocatePinned(capacity);
        while (_inFlight.Count > 0 && device.FenceDone(_inFlight.Peek().Fence)) device.ReleaseFence(_inFlight.Dequeue().Fence);
        long size = (bytes + Align - 1) / Align * Align;
        if (_head + size > capacity) _head = 0;
        long start = _head, end = start + size;
        // Stream order: a later fence done means every earlier one is, so waiting from the oldest is enough.
        while (_inFlight.Any(f => f.Start < end && start < f.End))
        {
            var oldest = _inFlight.Dequeue();
            device.WaitFence(oldest.Fence);
            device.ReleaseFence(oldest.Fence);
            Waits++;
        }
        _head = end;
        return start;
    }

    public void Dispose()
    {
        while (_inFlight.Count > 0)
        {
            var f = _inFlight.Dequeue();
            device.WaitFence(f.Fence);
            device.ReleaseFence(f.Fence);
        }
        if (_buffer != 0) device.FreePinned(_buffer);
        _buffer = 0;
    }
}
