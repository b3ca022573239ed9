using Sbp.Backends.Cuda.Interop;
using static Sbp.Backends.Cuda.Interop.CudaErrors;

namespace Sbp.Backends.Cuda;

// The communication stream and event queries (NCCL collectives; Distributed/NcclCommunicator.cs).
internal sealed partial class NativeCudaApi
{
    nint _commStream, _commFence;

    public bool EventCompleted(nint evt)
    {
        Current();
        var r = CuDriver.EventQuery(evt);
        if (r == CuResult.NotReady) return false;
        Check(r, "cuEventQuery");
        return true;
    }

    public nint CommunicationStream()
    {
        Current();
        if (_commStream == 0)
        {
            Check(CuDriver.EventCreate(out _commFence, 2));     // CU_EVENT_DISABLE_TIMING
            Check(CuDriver.StreamCreate(out _commStream, 1));   // CU_STREAM_NON_BLOCKING
        }
        // The collective reads what the compute stream wrote before it was issued (a gradient bucket).
        Check(CuDriver.EventRecord(_commFence, _stream));
        Check(CuDriver.StreamWaitEvent(_commStream, _commFence, 0));
        return _commStream;
    }

    public void RecordCommunicationEvent(nint evt)
    {
        Current();
        if (_commStream == 0) throw new InvalidOperationException("NativeCudaApi.RecordCommunicationEvent: nothing was issued on the communication stream.");
        Check(CuDriver.EventRecord(evt, _commStream));
    }

    void DestroyCommunicationStream()
    {
        if (_commStream == 0) return;
        CuDriver.StreamSynchronize(_commStream);
        CuDriver.StreamDestroy(_commStream);
        CuDriver.EventDestroy(_commFence);
        _commStream = 0;
    }
}
