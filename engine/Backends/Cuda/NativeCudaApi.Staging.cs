using Sbp.Backends.Cuda.Interop;
using static Sbp.Backends.Cuda.Interop.CudaErrors;

namespace Sbp.Backends.Cuda;

// Host-to-device copies through a pinned staging ring (StagingRing): the host never waits for the stream to upload.
internal sealed unsafe partial class NativeCudaApi
{
    readonly object _stagingGate = new();
    StagingRing? _staging;
    Driver? _stagingDriver;

    public void CopyHostToDevice(ulong destination, void* source, long bytes)
    {
        if (bytes == 0) return;
        Current();
        lock (_stagingGate)
        {
            _staging ??= new StagingRing(_stagingDriver = new Driver(this));
            _staging.Upload(destination, new ReadOnlySpan<byte>(source, checked((int)bytes)));
        }
    }

    void DestroyStaging()
    {
        lock (_stagingGate)
        {
            _staging?.Dispose();
            _stagingDriver?.DestroyFences();
        }
    }

    /// <summary>The ring's device: cuMemHostAlloc'd memory, cuMemcpyHtoDAsync on the stream, events without timing as fences.</summary>
    sealed class Driver(NativeCudaApi api) : IStagingDevice
    {
        readonly Stack<nint> _free = new();

        public nint AllocatePinned(long bytes)
        {
            Check(CuDriver.MemHostAlloc(out nint p, (nuint)bytes, 0), "cuMemHostAlloc");
            return p;
        }

        public void FreePinned(nint pointer) => CuDriver.MemFreeHost(pointer);

        public void CopyAsync(ulong destination, nint source, long bytes) =>
            Check(CuDriver.MemcpyHtoDAsync(destination, (void*)source, (nuint)bytes, api._stream));

        public nint RecordFence()
        {
            if (!_free.TryPop(out nint e)) Check(CuDriver.EventCreate(out e, 2));   // CU_EVENT_DISABLE_TIMING
            Check(CuDriver.EventRecord(e, api._stream));
            return e;
        }

        public bool FenceDone(nint fence) => api.EventCompleted(fence);

        public void WaitFence(nint fence) => Check(CuDriver.EventSynchronize(fence));

        public void ReleaseFence(nint fence) => _free.Push(fence);

        public void DestroyFences()
        {
            while (_free.TryPop(out nint e)) CuDriver.EventDestroy(e);
        }
    }
}
