namespace Sbp.Memory;

/// <summary>Where a pool's memory comes from: host memory on the CPU, cuMemAlloc on CUDA.</summary>
public interface IRawAllocator
{
    /// <summary>Returns a pointer aligned to at least 64 bytes, or 0 when the device is out of memory.</summary>
    nint Allocate(long bytes);
    void Free(nint pointer);
}

/// <summary>64-byte aligned native host memory, never on the GC heap.</summary>
public sealed unsafe class HostAllocator : IRawAllocator
{
    public nint Allocate(long bytes)
    {
        try { return (nint)System.Runtime.InteropServices.NativeMemory.AlignedAlloc((nuint)bytes, 64); }
        catch (OutOfMemoryException) { return 0; }
    }

    public void Free(nint pointer) => System.Runtime.InteropServices.NativeMemory.AlignedFree((void*)pointer);
}
