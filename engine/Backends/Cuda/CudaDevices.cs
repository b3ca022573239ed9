using Sbp.Backends.Cuda.Interop;
using Sbp.Memory;
using Sbp.Tensors;

namespace Sbp.Backends.Cuda;

/// <summary>Why no CUDA device could be opened.</summary>
public enum CudaUnavailableReason
{
    /// <summary>libcuda.so.1 is not on the system (no NVIDIA driver installed).</summary>
    DriverMissing,
    /// <summary>The driver loads but cuInit reports no device (CUDA_ERROR_NO_DEVICE) or the count is 0.</summary>
    NoDevice,
    /// <summary>The driver loads but fails otherwise (stub library, version mismatch, ...).</summary>
    InitFailed,
}

/// <summary>No CUDA device: the message says whether the driver is missing or there is no GPU, and what to do.</summary>
public sealed class CudaUnavailableException(CudaUnavailableReason reason, string message, Exception? inner = null)
    : Exception(message, inner)
{
    public CudaUnavailableReason Reason { get; } = reason;
}

/// <summary>
/// Opens CUDA devices (one per ordinal per process, like <see cref="Device.Cpu"/>) and resolves
/// device names: "cpu", "cuda", "cuda:N" and "auto" (CUDA when a GPU is there, else the CPU).
/// </summary>
public static class CudaDevices
{
    static readonly object Gate = new();
    static readonly Dictionary<int, Device> Open = new();
    static bool _autoNoted;

    /// <summary>A device over any <see cref="ICudaApi"/> (the real one, or the simulated device).</summary>
    internal static Device Create(string name, ICudaApi api) =>
        Device.Create(name, DeviceKind.Cuda, new MemoryPool(name, new CudaAllocator(api)), new CudaBackend(api, name));

    /// <summary>cuda:ordinal, opened once per process; throws <see cref="CudaUnavailableException"/> without a driver or GPU.</summary>
    public static Device Get(int ordinal = 0)
    {
        lock (Gate)
        {
            if (Open.TryGetValue(ordinal, out var d)) return d;
            var (reason, message) = Probe();
            if (reason is { } r) throw new CudaUnavailableException(r, message);
            try
            {
                d = Create($"cuda:{ordinal}", new NativeCudaApi(ordinal));
            }
            catch (CudaException e)
            {
                throw new CudaUnavailableException(CudaUnavailableReason.InitFailed, $"cuda:{ordinal}: could not open the device: {e.Message}", e);
            }
            Open[ordinal] = d;
            return d;
        }
    }

    /// <summary>
    /// Checks for the driver and a device without opening one: null when CUDA is usable, else the
    /// reason and a one-sentence explanation.
    /// </summary>
    public static (CudaUnavailableReason? Reason, string Message) Probe()
    {
        CudaLibraries.EnsureResolver();
        if (!CudaLibraries.TryLoadDriver(out var error))
            return (CudaUnavailableReason.DriverMissing, error!);
        var r = CuDriver.Init(0);
        if (r == CuResult.NoDevice)
            return (CudaUnavailableReason.NoDevice, "The CUDA driver (libcuda.so.1) is installed but reports no GPU: cuInit returned " +
                $"{CudaErrors.Driver(r, "cuInit", "probe").ErrorName}. Check nvidia-smi, the /dev/nvidia* devices (containers need --gpus) and CUDA_VISIBLE_DEVICES.");
        if (r != CuResult.Success)
        {
            var e = CudaErrors.Driver(r, "cuInit", "probe");
            return (CudaUnavailableReason.InitFailed, $"The CUDA driver (libcuda.so.1) failed to initialise: cuInit returned {e.ErrorName} ({e.Code}): {e.ErrorString}.");
        }
        if (CuDriver.DeviceGetCount(out int count) != CuResult.Success || count == 0)
            return (CudaUnavailableReason.NoDevice, "The CUDA driver (libcuda.so.1) is installed but cuDeviceGetCount reports 0 devices. Check CUDA_VISIBLE_DEVICES.");
        return (null, "");
    }

    /// <summary>
    /// "cpu" (the shared CPU device), "cuda" / "cuda:N", or "auto": CUDA device 0 when usable, else
    /// the CPU, with <paramref name="note"/> saying why (null when CUDA was chosen or not asked for).
    /// </summary>
    public static Device Resolve(string spec, out string? note)
    {
        ArgumentNullException.ThrowIfNull(spec);
        note = null;
        string s = spec.Trim().ToLowerInvariant();
        if (s == "cpu") return Device.Cpu;
        if (s == "cuda") return Get(0);
        if (s.StartsWith("cuda:", StringComparison.Ordinal) && int.TryParse(s.AsSpan(5), out int ordinal) && ordinal >= 0) return Get(ordinal);
        if (s == "auto")
        {
            try
            {
                return Get(0);
            }
            catch (CudaUnavailableException e)
            {
                // One short line: the full reason is what `--device cuda` prints.
                string why = e.Reason switch
                {
                    CudaUnavailableReason.DriverMissing => "no NVIDIA driver (libcuda.so.1)",
                    CudaUnavailableReason.NoDevice => "no GPU",
                    _ => "the CUDA driver failed to start",
                };
                note = $"device auto: {why}; using the CPU (--device cuda says why in full).";
                return Device.Cpu;
            }
        }
        throw new ArgumentException($"Device.Resolve: unknown device '{spec}'; use \"cpu\", \"cuda\", \"cuda:N\" or \"auto\".", nameof(spec));
    }

    /// <summary>As <see cref="Resolve(string, out string?)"/>; the "auto" fallback note goes to stderr once per process.</summary>
    public static Device Resolve(string spec)
    {
        var d = Resolve(spec, out var note);
        if (note is not null)
            lock (Gate)
            {
                if (!_autoNoted) Console.Error.WriteLine(note);
                _autoNoted = true;
            }
        return d;
    }
}
