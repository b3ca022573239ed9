using Sbp.Backends.Cuda;
using Sbp.Tensors;

namespace Sbp.GpuKit;

/// <summary>
/// CUDA driver errors after which the context is unusable (every later call returns the same code):
/// 700 CUDA_ERROR_ILLEGAL_ADDRESS and 719 CUDA_ERROR_LAUNCH_FAILED above all, and the other kernel
/// faults (702 launch timeout, 714-718: stack, instruction, alignment, address space, program counter).
/// After one, the kit stops: the checks that follow would only repeat the error.
/// </summary>
public static class StickyError
{
    static readonly HashSet<int> Codes = [700, 702, 714, 715, 716, 717, 718, 719];

    /// <summary>The sticky driver error in <paramref name="e"/> or its inner exceptions, if any.</summary>
    public static CudaException? Find(Exception? e)
    {
        for (; e is not null; e = e.InnerException)
        {
            if (e is CudaException { Library: "CUDA driver" } c && Codes.Contains(c.Code)) return c;
            if (e is AggregateException a)
                foreach (var inner in a.InnerExceptions)
                    if (Find(inner) is { } found) return found;
        }
        return null;
    }

    /// <summary>True when <paramref name="e"/> holds a sticky driver error (for exception filters: such errors are not caught per case).</summary>
    public static bool Is(Exception e) => Find(e) is not null;

    /// <summary>
    /// The sticky error behind <paramref name="e"/>: its own, or, for a cuBLAS / cuDNN failure (which may
    /// be a kernel fault reported as EXECUTION_FAILED), the one a stream synchronization reports now.
    /// </summary>
    public static CudaException? Probe(Exception e, Device device)
    {
        if (Find(e) is { } own) return own;
        if (e is not CudaException || device.Backend is not CudaBackend cuda) return null;
        try
        {
            cuda.Synchronize();
            return null;
        }
        catch (CudaException sync)
        {
            return Find(sync);
        }
    }

    /// <summary>"sticky CUDA error 700 (CUDA_ERROR_ILLEGAL_ADDRESS)".</summary>
    public static string Describe(CudaException e) => $"sticky CUDA error {e.Code} ({e.ErrorName})";

    /// <summary>The error --inject-sticky raises: what a kernel's illegal access looks like to the kit.</summary>
    public static CudaException Injected(string phase) =>
        new("CUDA driver", "cuStreamSynchronize", 700, "CUDA_ERROR_ILLEGAL_ADDRESS", "an illegal memory access was encountered",
            $"--inject-sticky {phase}");
}
