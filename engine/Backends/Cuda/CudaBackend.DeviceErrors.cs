using Sbp.Memory;
using Sbp.Tensors;

namespace Sbp.Backends.Cuda;

// Errors found on the device: a user's indices are checked by a kernel, not by reading them on the host.
public sealed unsafe partial class CudaBackend
{
    /// <summary>Most checks in flight before the host reads their result anyway.</summary>
    const int MaxPendingChecks = 4096;

    /// <summary>Int32 [4] on the device while checks are pending: tag of the first failed check (0: none), index, position, size.</summary>
    Tensor? _errors;

    /// <summary>The ops whose indices were checked since the last read; a check's tag is its place here + 1.</summary>
    readonly List<string> _pendingChecks = [];

    /// <summary>
    /// Checks that every one of <paramref name="indices"/> is in 0..<paramref name="size"/>-1 on the device (check_indices_i32);
    /// a bad one raises the CPU backend's <see cref="IndexOutOfRangeException"/>, naming <paramref name="op"/>, at the host's next read.
    /// </summary>
    void CheckIndicesOnDevice(Tensor indices, int size, string op)
    {
        if (_pendingChecks.Count >= MaxPendingChecks) RaiseDeviceErrors();
        if (_errors is null)
        {
            _errors = Tensor.Empty(new Shape(4), indices.Device, DType.Int32, MemoryCategory.Workspace).DetachFromScope();
            Api.Memset32(P(_errors), 0, 4);
        }
        _pendingChecks.Add(op);
        Launch(PtxKernels.CheckIndicesI32, indices.Numel, Ptr(indices), U32(indices.Numel), U32(size), Ptr(_errors), U32(_pendingChecks.Count));
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
        var ops = _pendingChecks.ToArray();
        _pendingChecks.Clear();
        _errors.Dispose();
        _errors = null;
        if (e[0] <= 0 || e[0] > ops.Length) return;
        throw new IndexOutOfRangeException($"{ops[e[0] - 1]}: index {e[1]} at position {e[2]} is out of range for a dimension of size {e[3]} (valid: 0..{e[3] - 1}); " +
            "found on the device and raised at the next read of device memory, so what was computed after it is not valid.");
    }
}
