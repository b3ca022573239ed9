using Sbp.Memory;
using Sbp.Tensors;

namespace Sbp.Backends.Cuda;

// Errors found on the device: a user's values are checked by a kernel, not by reading them on the host (a read waits for
// every queued kernel). The first failed check is raised at the host's next read of device memory, which waits anyway.
public sealed unsafe partial class CudaBackend
{
    /// <summary>Most checks in flight before the host reads their result anyway.</summary>
    const int MaxPendingChecks = 4096;

    /// <summary>What the error of a check raised later says about when it was found.</summary>
    const string DeviceNote = " (found on the device and raised at the host's next read of device memory, so what ran after it is not valid)";

    /// <summary>Int32 [4] on the device while checks are pending: tag of the first failed check (0: none), value, position, unused.</summary>
    Tensor? _errors;

    /// <summary>The failures of the checks launched since the last read; a check's tag is its place here + 1.</summary>
    readonly List<CheckFailure> _pendingChecks = [];

    public void CheckIndices(Tensor indices, int size, CheckFailure failure)
    {
        long n = Count(indices.Numel, "CheckIndices");
        if (n == 0) return;
        Launch(PtxKernels.CheckIndicesI32, n, Ptr(indices), U32(n), U32(size), Ptr(ErrorBlock(indices.Device)), U32(Pending(failure)));
    }

    public void CheckAbove(Tensor x, float floor, CheckFailure failure)
    {
        long n = Count(x.Numel, "CheckAbove");
        if (n == 0) return;
        Launch(PtxKernels.CheckAboveF32, n, Ptr(x), U32(n), F32(floor), Ptr(ErrorBlock(x.Device)), U32(Pending(failure)));
    }

    /// <summary>index_select / index_add's indices: the CPU backend's error, raised later.</summary>
    void CheckIndicesOnDevice(Tensor indices, int size, string op)
    {
        if (indices.IndexBound <= size) return;   // the engine's own (SBP's kept positions): valid by construction
        CheckIndices(indices, size, CheckFailures.IndexOutOfRange(op, size));
    }

    Tensor ErrorBlock(Device device)
    {
        if (_pendingChecks.Count >= MaxPendingChecks) RaiseDeviceErrors();
        if (_errors is null)
        {
            _errors = Tensor.Empty(new Shape(4), device, DType.Int32, MemoryCategory.Workspace).DetachFromScope();
            Api.Memset32(P(_errors), 0, 4);
        }
        return _errors;
    }

    int Pending(CheckFailure failure)
    {
        _pendingChecks.Add(failure);
        return _pendingChecks.Count;
    }

    /// <summary>
    /// Reads the device's error block when checks are pending (called where the host reads device memory, so it synchronizes
    /// anyway) and throws the first error found; the block is freed either way.
    /// </summary>
    void RaiseDeviceErrors()
    {
        if (_errors is null) return;
        var e = stackalloc int[4];
        Api.CopyDeviceToHost(e, P(_errors), 16);
        var checks = _pendingChecks.ToArray();
        _pendingChecks.Clear();
        _errors.Dispose();
        _errors = null;
        if (e[0] <= 0 || e[0] > checks.Length) return;
        throw checks[e[0] - 1](e[2], e[1], DeviceNote);
    }
}
