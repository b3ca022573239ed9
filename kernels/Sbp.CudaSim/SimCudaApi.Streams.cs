namespace Sbp.CudaSim;

// The communication stream of a simulated device (ICudaApi.CommunicationStream). Compute work runs when it is issued
// (the simulator is synchronous), so the communication stream only holds work that finishes later: the simulated NCCL's
// collectives, done when the last rank of the group issues its part (SimNcclApi).
internal sealed partial class SimCudaApi
{
    static long _nextStream;
    [ThreadStatic] static SimCudaApi? _currentOnThread;
    readonly object _commGate = new();
    readonly List<SimStreamWork> _commQueue = [];
    readonly Dictionary<nint, SimStreamWork[]> _commEvents = new();
    nint _commStream;

    /// <summary>The device the calling thread last made current (CommunicationStream), as cudaSetDevice does for the runtime.</summary>
    internal static SimCudaApi? CurrentOnThread => _currentOnThread;

    /// <summary>The communication stream's handle; 0 before its first use.</summary>
    internal nint CommunicationStreamHandle
    {
        get { lock (_commGate) return _commStream; }
    }

    public nint CommunicationStream()
    {
        _currentOnThread = this;
        lock (_commGate)
        {
            if (_commStream == 0) _commStream = (nint)(0x5C0_0000_0000L + Interlocked.Increment(ref _nextStream));
            return _commStream;
        }
    }

    public void RecordCommunicationEvent(nint evt)
    {
        RecordEvent(evt);
        lock (_commGate)
        {
            if (_commStream == 0) throw new InvalidOperationException("SimCudaApi.RecordCommunicationEvent: nothing was issued on the communication stream.");
            _commQueue.RemoveAll(w => w.IsDone);
            _commEvents[evt] = [.. _commQueue];
        }
    }

    /// <summary>Compute work is done when issued; an event on the communication stream waits for the collectives before it.</summary>
    public bool EventCompleted(nint evt)
    {
        lock (_commGate) return !_commEvents.TryGetValue(evt, out var work) || work.All(w => w.IsDone);
    }

    /// <summary>Work that completes later, in the communication stream's order.</summary>
    internal void EnqueueCommunication(SimStreamWork work)
    {
        lock (_commGate) _commQueue.Add(work);
    }

    /// <summary>Forgets an event's communication work (re-recorded on the compute stream, or destroyed).</summary>
    void ForgetCommunicationEvent(nint evt)
    {
        lock (_commGate) _commEvents.Remove(evt);
    }
}

/// <summary>One deferred piece of communication-stream work (a collective), done once (or stopped by an abort).</summary>
internal sealed class SimStreamWork(string what)
{
    volatile bool _done;
    public string What => what;
    public bool IsDone => _done;
    public bool Aborted { get; private set; }
    public void Complete() => _done = true;

    public void Abort()
    {
        Aborted = true;
        _done = true;
    }
}
