using System.Reflection;
using System.Runtime.InteropServices;

namespace Sbp.Backends.Cuda.Interop;

/// <summary>
/// Finds and loads the NVIDIA libraries for the bindings (one DllImport resolver for the engine
/// assembly; docs/CUDA-BINDINGS.md section 5):
/// <list type="bullet">
/// <item>the driver, libcuda.so.1, by the system's search only (never a toolkit or wheel
/// <c>stubs/libcuda.so</c>, which answers CUDA_ERROR_STUB_LIBRARY);</item>
/// <item>cuBLAS: libcublasLt then libcublas (.13, else .12) from the first folder holding the pair;</item>
/// <item>cuDNN 9: the shim and all six sub-libraries from one folder, sub-libraries first; a folder
/// missing any of them is refused before any call (the shim would abort the process later).</item>
/// </list>
/// Folders searched, in order: <c>SBP_CUDA_LIB_DIRS</c> (':'-separated), the Python environments'
/// <c>site-packages/nvidia/{cu13,cublas,cudnn}/lib</c> then <c>nvidia/*/lib</c> (VIRTUAL_ENV,
/// CONDA_PREFIX, /opt/*/.venv, ~/.local, /usr/local/lib/python3*, /usr/lib/python3), then
/// /usr/local/cuda/lib64. Handles are kept for the process lifetime.
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

    static readonly object Gate = new();
    static bool _registered;
    static nint _driver, _cublas, _cudnn;

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
            var dirs = SearchDirectories();
            var found = FindCublas(dirs) ?? throw new DllNotFoundException(
                $"cuBLAS not found: no folder holds libcublasLt.so.13 + libcublas.so.13 (or the .12 pair). Searched: {string.Join(", ", dirs)}. " +
                $"Install the nvidia-cublas wheel (pip install nvidia-cublas) or the CUDA toolkit, or set {DirsVariable} to the folder.");
            NativeLibrary.Load(found.Lt);
            _cublas = NativeLibrary.Load(found.Blas);
            return _cublas;
        }
    }

    internal static nint LoadCudnn()
    {
        lock (Gate)
        {
            if (_cudnn != 0) return _cudnn;
            var dirs = SearchDirectories();
            var dir = FindCudnn(dirs, out var problems) ?? throw new DllNotFoundException(
                "cuDNN 9 not found complete: " + (problems.Count > 0 ? string.Join("; ", problems) : "no folder holds libcudnn.so.9") +
                $". Searched: {string.Join(", ", dirs)}. Install the nvidia-cudnn-cu13 (or -cu12) wheel, or set {DirsVariable} to a folder holding all of {string.Join(", ", CudnnFiles)}.");
            foreach (var file in CudnnFiles) _cudnn = NativeLibrary.Load(Path.Combine(dir, file));   // the shim is last
            return _cudnn;
        }
    }

    /// <summary>The first folder holding the cuBLAS pair (Lt first), 13 before 12 per folder.</summary>
    public static (string Lt, string Blas)? FindCublas(IEnumerable<string> directories)
    {
        foreach (var dir in directories)
            foreach (var v in new[] { "13", "12" })
            {
                string lt = Path.Combine(dir, $"libcublasLt.so.{v}"), blas = Path.Combine(dir, $"libcublas.so.{v}");
                if (File.Exists(lt) && File.Exists(blas)) return (lt, blas);
            }
        return null;
    }

    /// <summary>The first folder holding every file of <see cref="CudnnFiles"/>; folders with only some are reported in problems.</summary>
    public static string? FindCudnn(IEnumerable<string> directories, out List<string> problems)
    {
        problems = [];
        foreach (var dir in directories)
        {
            if (!File.Exists(Path.Combine(dir, "libcudnn.so.9"))) continue;
            var missing = CudnnFiles.Where(f => !File.Exists(Path.Combine(dir, f))).ToList();
            if (missing.Count == 0) return dir;
            problems.Add($"{dir} has libcudnn.so.9 but lacks {string.Join(", ", missing)}");
        }
        return null;
    }

    /// <summary>The folders searched for cuBLAS and cuDNN, in order, existing ones only.</summary>
    public static IReadOnlyList<string> SearchDirectories()
    {
        var dirs = new List<string>();
        var env = Environment.GetEnvironmentVariable(DirsVariable);
        if (!string.IsNullOrEmpty(env)) dirs.AddRange(env.Split(':', StringSplitOptions.RemoveEmptyEntries));
        var sitePackages = PythonSitePackages().ToList();
        foreach (var sp in sitePackages)
            foreach (var sub in new[] { "cu13", "cublas", "cudnn" })
                dirs.Add(Path.Combine(sp, "nvidia", sub, "lib"));
        foreach (var sp in sitePackages)
        {
            var nvidia = Path.Combine(sp, "nvidia");
            if (Directory.Exists(nvidia))
                dirs.AddRange(Directory.EnumerateDirectories(nvidia).Order(StringComparer.Ordinal).Select(d => Path.Combine(d, "lib")));
        }
        dirs.Add("/usr/local/cuda/lib64");
        dirs.Add("/usr/local/cuda/targets/x86_64-linux/lib");
        return dirs.Where(Directory.Exists).Distinct(StringComparer.Ordinal).ToList();
    }

    static IEnumerable<string> PythonSitePackages()
    {
        var roots = new List<string>();
        foreach (var v in new[] { "VIRTUAL_ENV", "CONDA_PREFIX" })
            if (Environment.GetEnvironmentVariable(v) is { Length: > 0 } p) roots.Add(Path.Combine(p, "lib"));
        foreach (var opt in SafeDirs("/opt")) roots.Add(Path.Combine(opt, ".venv", "lib"));
        var home = Environment.GetEnvironmentVariable("HOME");
        if (!string.IsNullOrEmpty(home)) roots.Add(Path.Combine(home, ".local", "lib"));
        roots.Add("/usr/local/lib");
        foreach (var root in roots)
            foreach (var py in SafeDirs(root).Where(d => Path.GetFileName(d).StartsWith("python3", StringComparison.Ordinal)).Order(StringComparer.Ordinal))
                foreach (var name in new[] { "site-packages", "dist-packages" })
                    if (Directory.Exists(Path.Combine(py, name))) yield return Path.Combine(py, name);
        if (Directory.Exists("/usr/lib/python3/dist-packages")) yield return "/usr/lib/python3/dist-packages";
    }

    static IEnumerable<string> SafeDirs(string dir)
    {
        try { return Directory.Exists(dir) ? Directory.GetDirectories(dir) : []; }
        catch (UnauthorizedAccessException) { return []; }
        catch (IOException) { return []; }
    }
}
