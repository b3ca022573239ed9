using System.Runtime.InteropServices;
using Sbp.Backends.Cuda;
using Sbp.Backends.Cuda.Interop;
using Sbp.Tensors;

namespace Sbp.GpuKit;

/// <summary>The device, the NVIDIA libraries the process loaded (path and version of each) and the engine's choice of libraries.</summary>
public sealed record DeviceInfo(string Name, string Description, long TotalBytes, long FreeBytes, IReadOnlyList<LibraryInfo> Libraries, LibraryPlanInfo Plan);

public sealed record LibraryInfo(string Library, string Path, string Version)
{
    public string Folder => System.IO.Path.GetDirectoryName(Path) ?? "";
}

/// <summary>
/// Describes a CUDA device. The engine's bindings are internal, so the library versions come from
/// the libraries the engine already loaded: their paths from /proc/self/maps, then one version
/// export each through a function pointer (no reflection, NativeAOT-safe). Called after each phase,
/// so the report lists what that phase loaded.
/// </summary>
public static unsafe class DeviceReport
{
    /// <summary>The device now; after a sticky error its memory can no longer be read, and <paramref name="previous"/>'s figures stay.</summary>
    public static DeviceInfo Describe(Device device, LibraryPlanInfo plan, DeviceInfo? previous = null)
    {
        var backend = device.Backend as CudaBackend
            ?? throw new ArgumentException($"DeviceReport: '{device.Name}' is not a CUDA device.", nameof(device));
        long free = previous?.FreeBytes ?? -1, total = previous?.TotalBytes ?? -1;
        try
        {
            (free, total) = backend.MemoryInfo();
        }
        catch (CudaException) { }
        return new DeviceInfo(device.Name, backend.Description, total, free, LoadedLibraries(), plan);
    }

    /// <summary>libcuda, libcublas, libcudnn and libnccl as mapped into this process (call after a GEMM, a convolution and the NCCL check ran).</summary>
    static List<LibraryInfo> LoadedLibraries()
    {
        var found = new List<LibraryInfo>();
        if (!File.Exists("/proc/self/maps")) return found;
        var paths = File.ReadLines("/proc/self/maps")
            .Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Where(f => f.Length >= 6 && f[5].StartsWith('/'))
            .Select(f => f[5])
            .Distinct()
            .ToList();
        foreach (var (library, prefix, version) in new (string, string, Func<nint, string?>)[]
        {
            ("CUDA driver", "libcuda.so", DriverVersion),
            ("cuBLAS", "libcublas.so", CublasVersion),
            ("cuBLASLt", "libcublasLt.so", _ => null),
            ("cuDNN", "libcudnn.so", CudnnVersion),
            ("NCCL", "libnccl.so", NcclVersion),
        })
        {
            var path = paths.FirstOrDefault(p => Path.GetFileName(p).StartsWith(prefix, StringComparison.Ordinal));
            if (path is null) continue;
            string v = "?";
            if (NativeLibrary.TryLoad(path, out var handle))
            {
                try { v = version(handle) ?? VersionFromName(path); }
                catch (Exception e) when (e is not OutOfMemoryException) { v = $"? ({e.Message})"; }
            }
            found.Add(new LibraryInfo(library, path, v));
        }
        return found;
    }

    static string VersionFromName(string path)
    {
        var name = Path.GetFileName(path);
        int at = name.IndexOf(".so.", StringComparison.Ordinal);
        return at < 0 ? "?" : name[(at + 4)..];
    }

    static string? DriverVersion(nint handle)
    {
        if (!NativeLibrary.TryGetExport(handle, "cuDriverGetVersion", out var f)) return null;
        int v;
        return ((delegate* unmanaged<int*, int>)f)(&v) == 0 ? $"{v / 1000}.{v % 1000 / 10} (CUDA API {v})" : null;
    }

    static string? CublasVersion(nint handle)
    {
        // cublasGetProperty(libraryPropertyType: MAJOR 0, MINOR 1, PATCH 2, int*) -> cublasStatus_t.
        if (!NativeLibrary.TryGetExport(handle, "cublasGetProperty", out var f)) return null;
        var get = (delegate* unmanaged<int, int*, int>)f;
        int major, minor, patch;
        if (get(0, &major) != 0 || get(1, &minor) != 0 || get(2, &patch) != 0) return null;
        return $"{major}.{minor}.{patch}";
    }

    static string? NcclVersion(nint handle)
    {
        // ncclResult_t ncclGetVersion(int*): X*10000 + Y*100 + Z from 2.9.
        if (!NativeLibrary.TryGetExport(handle, "ncclGetVersion", out var f)) return null;
        int v;
        return ((delegate* unmanaged<int*, int>)f)(&v) == 0 ? $"{v / 10000}.{v % 10000 / 100}.{v % 100}" : null;
    }

    static string? CudnnVersion(nint handle)
    {
        // size_t cudnnGetVersion(): major * 10000 + minor * 100 + patch from cuDNN 9.
        if (!NativeLibrary.TryGetExport(handle, "cudnnGetVersion", out var f)) return null;
        ulong v = ((delegate* unmanaged<nuint>)f)();
        return $"{v / 10000}.{v % 10000 / 100}.{v % 100}";
    }
}
