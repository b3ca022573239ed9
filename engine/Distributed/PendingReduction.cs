namespace Sbp.Distributed;

/// <summary>An all-reduce in flight (<see cref="Communicator.StartAllReduce"/>).</summary>
public abstract class PendingReduction
{
    /// <summary>True once the sum is in the buffer; also lets the engine progress it (MPI progresses non-blocking calls only when asked).</summary>
    public abstract bool Test();

    /// <summary>Blocks until the sum is in the buffer (or the communicator's timeout aborts every rank).</summary>
    public abstract void Wait();
}

/// <summary>A reduction that was done when it started (one rank).</summary>
public sealed class CompletedReduction : PendingReduction
{
    public static readonly CompletedReduction Instance = new();
    public override bool Test() => true;
    public override void Wait() { }
}
