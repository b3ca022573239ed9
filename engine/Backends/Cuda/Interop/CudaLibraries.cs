using System.Reflection;
using System.Runtime.InteropServices;

namespace Sbp.Backends.Cuda.Interop;

/// <summary>
/// Finds and loads the NVIDIA libraries for the bindings (one DllImport resolver for the engine
/// assembly; docs/CUDA-BINDINGS.md section 5):
/// <list type="bullet">
/// <item>the driver, libcuda.so.1, by the system's search only (never a toolkit or wheel
/// <c>stubs/libcuda.so</c>, which answers CUDA_ERROR_STUB_LIBRARY);</item>
/// <item>cuBLAS: libcublasLt then libcublas (.13, else .12), refused before loading when the driver
/// is older than their CUDA major;</item>
/// <item>cuDNN 9: cuBLAS first (cuDNN opens libcublasLt by name, and in wheel layouts it sits in another
/// folder), then the sub-libraries and the shim from one complete folder (a missing one would abort
/// the process later); then cudnnGetCudartVersion must give cuBLAS's CUDA major, else it is refused.</item>
/// </list>
/// What to load is decided by <see cref="CudaLibraryPlan"/> over the folders of
/// <see cref="CudaLibrarySearch"/>; this class only performs it. Handles are kept for the process lifetime.
/// </summary>
public static class CudaLibraries
{
    internal const string Driver = "libcuda.so.1";
    internal const string Cublas = "sbp-cublas";
    internal const string Cudnn = "sbp-cudnn";

    /// <summary>The environment variable naming extra folders to search first.</summary>
    public const string DirsVariable = "SBP_CUDA_LIB_DIRS";

    /// <summary>The cuDNN 9 files that must sit together in one folder.</summary>
    public static readonly IReadOnlyList<string> CudnnFiles =
    [
        "libcudnn_graph.so.9", "libcudnn_ops.so.9", "libcudnn_cnn.so.9", "libcudnn_adv.so.9", "libcudnn_heuristic.so.9",
        "libcudnn_engines_precompiled.so.9", "libcudnn_engines_runtime_compiled.so.9", "libcudnn.so.9",
    ];

    /// <summary>Sub-libraries of newer cuDNN 9 releases, loaded (before the shim) when the folder has them: the shim opens them
    /// by name too, and one missing where it expects it aborts the process as a missing required one does.</summary>
    public static readonly IReadOnlyList<string> CudnnOptionalFiles = ["libcudnn_engines_tensor_ir.so.9", "libcudnn_ext.so.9"];

    static readonly object Gate = new();
    static bool _registered;
    static nint _driver, _cublas, _cudnn;
    static CublasFiles? _cublasFiles;
    static int _cublasCudart;
    static string? _cudnnRefused;

    /// <summary>Registers the resolver for the engine assembly (idempotent).</summary>
    internal static void EnsureResolver()
    {
        lock (Gate)
        {
            if (_registered) return;
            NativeLibrary.SetDllImportResolver(typeof(CudaLibraries).Assembly, Resolve);
            _registered = true;
        }
    }

    static nint Resolve(string name, Assembly assembly, DllImportSearchPath? path) => name switch
    {
        Driver => LoadDriver(),
        Cublas => LoadCublas(),
        Cudnn => LoadCudnn(),
        _ => 0,
    };

    /// <summary>libcuda.so.1 by the system's search (ld.so.cache, LD_LIBRARY_PATH, or a copy already loaded under that soname).</summary>
    internal static nint LoadDriver()
    {
        lock (Gate)
        {
            if (_driver != 0) return _driver;
            if (!NativeLibrary.TryLoad(Driver, out _driver))
                throw new DllNotFoundException(
                    "CUDA driver not found: libcuda.so.1 is not on the system's library path. Install the NVIDIA driver " +
                    "(it provides libcuda.so.1); a CUDA toolkit or pip wheel alone does not, and its stubs/libcuda.so must not be used.");
            return _driver;
        }
    }

    /// <summary>True when libcuda.so.1 can be loaded.</summary>
    internal static bool TryLoadDriver(out string? error)
    {
        try
        {
            LoadDriver();
            error = null;
            return true;
        }
        catch (DllNotFoundException e)
        {
            error = e.Message;
            return false;
        }
    }

    internal static nint LoadCublas()
    {
        lock (Gate)
        {
            if (_cublas != 0) return _cublas;
            var plan = Plan(null);
            LoadCublas(plan, plan.Cublas ?? throw new DllNotFoundException(plan.CublasNotFound()));
            return _cublas;
        }
    }

    /// <summary>The driver check (before loading anything), then libcublasLt and libcublas, then cuBLAS's CUDA version.</summary>
    static void LoadCublas(CudaLibraryPlan plan, CublasFiles files)
    {
        RequireDriverFor(files);
        var handles = LoadInOrder(plan.CublasLoadOrder());
        Loaded(files, handles[files.Blas]);
    }

    /// <summary>Refuses libraries of a CUDA major the driver does not run (they would fail at their first call).</summary>
    static void RequireDriverFor(CublasFiles files)
    {
        if (CudaLibraryPlan.CheckDriver(DriverVersion(), files.Major, files.Blas) is { } old) throw new DllNotFoundException(old);
    }

    static void Loaded(CublasFiles files, nint blas)
    {
        _cublasCudart = ReadVersion(blas, "cublasGetCudartVersion") ?? files.Major * 1000;
        _cublasFiles = files;
        _cublas = blas;
    }

    internal static nint LoadCudnn()
    {
        lock (Gate)
        {
            if (_cudnn != 0) return _cudnn;
            if (_cudnnRefused is { } refused) throw new DllNotFoundException(refused);
            var plan = Plan(_cublasFiles);
            var folder = plan.Cudnn ?? throw new DllNotFoundException(plan.CudnnNotFound());
            var blas = plan.Cublas ?? throw new DllNotFoundException(plan.CublasNotFound(" (cuDNN 9 needs it: it opens libcublasLt by name)"));
            if (plan.WheelMismatch() is { } mix) throw new DllNotFoundException(mix);   // refused without loading anything
            bool cublasLoaded = _cublas != 0;
            if (!cublasLoaded) RequireDriverFor(blas);
            var handles = LoadInOrder(plan.CudnnLoadOrder(cublasLoaded));   // cuBLAS (unless loaded), sub-libraries, the shim
            if (!cublasLoaded) Loaded(blas, handles[blas.Blas]);
            nint shim = handles[folder.Shim];
            if (ReadVersion(shim, "cudnnGetCudartVersion") is { } cudart
                && CudaLibraryPlan.CheckVersions(blas.Blas, _cublasCudart, folder.Shim, cudart) is { } versions)
            {
                _cudnnRefused = versions;   // loaded but never called: every later use gets the same refusal
                throw new DllNotFoundException(versions);
            }
            return _cudnn = shim;
        }
    }

    static CudaLibraryPlan Plan(CublasFiles? loaded)
    {
        var search = CudaLibrarySearch.Machine;
        return CudaLibraryPlan.Make(search.Directories(), search.Places(), loaded);
    }

    /// <summary>Loads the files by absolute path, in the order given.</summary>
    static Dictionary<string, nint> LoadInOrder(IEnumerable<string> files)
    {
        var handles = new Dictionary<string, nint>(StringComparer.Ordinal);
        foreach (var file in files) handles[file] = NativeLibrary.Load(file);
        return handles;
    }

    /// <summary>
    /// A version export taking no argument and returning size_t (cudnnGetCudartVersion, cublasGetCudartVersion);
    /// null when absent. Called through the handle, not CuDnn's or CuBlas's import, which would re-enter this
    /// resolver while it is still loading.
    /// </summary>
    static unsafe int? ReadVersion(nint library, string export) =>
        NativeLibrary.TryGetExport(library, export, out var f) && (int)((delegate* unmanaged<nuint>)f)() is var v and > 0 ? v : null;

    /// <summary>cuDriverGetVersion (e.g. 13000 for a CUDA 13.0 driver), or null without a driver.</summary>
    internal static unsafe int? DriverVersion()
    {
        if (_driver == 0 && !NativeLibrary.TryLoad(Driver, out _driver)) return null;
        if (!NativeLibrary.TryGetExport(_driver, "cuDriverGetVersion", out var f)) return null;
        int version = 0;
        return ((delegate* unmanaged<int*, int>)f)(&version) == 0 && version > 0 ? version : null;
    }

    /// <summary>The first folder holding the cuBLAS pair (Lt first), 13 before 12 per folder.</summary>
    public static (string Lt, string Blas)? FindCublas(IEnumerable<string> directories) =>
        CudaLibraryPlan.CublasPairs(directories).FirstOrDefault() is { } p ? (p.Lt, p.Blas) : null;

    /// <summary>The first folder holding every file of <see cref="CudnnFiles"/>; folders with only some are reported in problems.</summary>
    public static string? FindCudnn(IEnumerable<string> directories, out List<string> problems) =>
        CudaLibraryPlan.CudnnFolders(directories, out problems).FirstOrDefault()?.Directory;

    /// <summary>The folders searched for cuBLAS, cuDNN and NCCL on this machine, in order, existing ones only (<see cref="CudaLibrarySearch"/>).</summary>
    public static IReadOnlyList<string> SearchDirectories() => CudaLibrarySearch.Machine.Directories();
}
