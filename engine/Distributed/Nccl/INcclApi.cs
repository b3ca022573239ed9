namespace Sbp.Distributed.Nccl;

/// <summary>
/// The seam between <see cref="NcclCommunicator"/> and NCCL: exactly the calls it makes, at nccl.h's own level
/// (results as codes, ncclInProgress included; device addresses; communicator and stream handles).
/// <see cref="NativeNcclApi"/> calls libnccl.so.2; the simulated NCCL (kernels/Sbp.CudaSim, SimulatedNccl) runs
/// several simulated GPUs of one process as the ranks of a group, so CI runs the communicator without a GPU.
/// </summary>
internal interface INcclApi
{
    /// <summary>e.g. "NCCL 2.21.5 (/venv/.../nvidia/nccl/lib/libnccl.so.2)" or "simulated NCCL".</summary>
    string Description { get; }

    /// <summary>ncclGetVersion's code (X*10000 + Y*100 + Z).</summary>
    int Version { get; }

    NcclResult GetUniqueId(out NcclUniqueId id);

    /// <summary>ncclCommInitRankConfig on the calling thread's current CUDA device (see <c>ICudaApi.CommunicationStream</c>).</summary>
    NcclResult CommInitRankConfig(out nint comm, int ranks, NcclUniqueId id, int rank, in NcclConfig config);

    NcclResult AllReduce(ulong send, ulong receive, ulong count, NcclDataType type, NcclRedOp op, nint comm, nint stream);

    NcclResult Broadcast(ulong send, ulong receive, ulong count, NcclDataType type, int root, nint comm, nint stream);

    NcclResult CommGetAsyncError(nint comm, out NcclResult asyncError);

    NcclResult CommFinalize(nint comm);

    NcclResult CommDestroy(nint comm);

    NcclResult CommAbort(nint comm);

    /// <summary>ncclGetErrorString.</summary>
    string ErrorString(NcclResult result);

    /// <summary>ncclGetLastError: the library's words on its last failure ("" when none).</summary>
    string LastError(nint comm);
}
