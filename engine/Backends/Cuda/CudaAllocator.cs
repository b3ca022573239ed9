using Sbp.Memory;

namespace Sbp.Backends.Cuda;

/// <summary>
/// Device memory for a <see cref="MemoryPool"/>: cuMemAlloc / cuMemFree through <see cref="ICudaApi"/>,
/// so CUDA devices get the CPU pool's caching, statistics, categories, limit and out-of-memory report.
/// The pool's pointers are device addresses (never dereferenced on the host).
/// </summary>
internal sealed class CudaAllocator(ICudaApi api) : IRawAllocator
{
    public nint Allocate(long bytes) => (nint)api.Allocate(bytes);

    public void Free(nint pointer) => api.Free((ulong)pointer);
}
