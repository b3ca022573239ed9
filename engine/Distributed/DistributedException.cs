namespace Sbp.Distributed;

/// <summary>A communication engine failed (an MPI or NCCL error code, a missing library, a lost rank).</summary>
public sealed class DistributedException(string message, Exception? inner = null) : Exception(message, inner);
