using Sbp.Backends;
using Sbp.Backends.Cpu;
using Sbp.Memory;

namespace Sbp.Tensors;

public enum DeviceKind
{
    Cpu,
    Cuda,
}

/// <summary>
/// Where tensors live: a backend that runs the kernels and a memory pool that accounts for every
/// byte. Ops require all their inputs on one device. <see cref="Cpu"/> is the shared CPU device;
/// <see cref="CreateCpu"/> makes an isolated one with its own pool, for separate accounting.
/// </summary>
public sealed class Device
{
    Device(string name, DeviceKind kind, MemoryPool pool, IBackend backend)
    {
        Name = name;
        Kind = kind;
        Pool = pool;
        Backend = backend;
    }

    public string Name { get; }
    public DeviceKind Kind { get; }
    public MemoryPool Pool { get; }
    public IBackend Backend { get; }

    /// <summary>
    /// TF32 tensor-core math for float32 GEMMs and convolutions on a GPU (cuBLAS COMPUTE_32F_FAST_TF32, cuDNN's default
    /// math type): several times the FP32 rate on an A100 / H100, with products rounded to a 10-bit mantissa (about 1e-3
    /// relative error). Off by default, as PyTorch's allow_tf32; the CPU computes in FP32 either way (setting it there
    /// changes nothing). The CLI's --tf32.
    /// </summary>
    public bool AllowTf32
    {
        get => Backend is Sbp.Backends.Cuda.CudaBackend { AllowTf32: true };
        set
        {
            if (Backend is Sbp.Backends.Cuda.CudaBackend cuda) cuda.AllowTf32 = value;
        }
    }

    /// <summary>The process-wide CPU device.</summary>
    public static Device Cpu { get; } = CreateCpu("cpu");

    /// <summary>Where factory methods put tensors when no device is given.</summary>
    public static Device Default { get; set; } = Cpu;

    /// <summary>A CPU device with its own memory pool (same backend as <see cref="Cpu"/>).</summary>
    public static Device CreateCpu(string name) => new(name, DeviceKind.Cpu, new MemoryPool(name, new HostAllocator()), CpuBackend.Instance);

    /// <summary>A device over a backend and its pool (the CUDA devices: Sbp.Backends.Cuda.CudaDevices).</summary>
    internal static Device Create(string name, DeviceKind kind, MemoryPool pool, IBackend backend) => new(name, kind, pool, backend);

    /// <summary>
    /// "cpu", "cuda", "cuda:N" or "auto" (CUDA when a GPU is usable, else the CPU with a one-line note on
    /// stderr). "cuda" without a driver or GPU throws <see cref="Sbp.Backends.Cuda.CudaUnavailableException"/>
    /// saying which is missing.
    /// </summary>
    public static Device Resolve(string name) => Sbp.Backends.Cuda.CudaDevices.Resolve(name);

    /// <summary>As <see cref="Resolve(string)"/>, returning the "auto" fallback note instead of printing it.</summary>
    public static Device Resolve(string name, out string? note) => Sbp.Backends.Cuda.CudaDevices.Resolve(name, out note);

    public override string ToString() => Name;
}
