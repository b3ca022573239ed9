using System.Runtime.InteropServices;

namespace Sbp.Benchmarks.Quick;

/// <summary>
/// OpenBLAS's cblas_sgemm by P/Invoke, for comparison only. Found through SBP_OPENBLAS (a path to
/// libopenblas.so.0) or the normal library search. A libgfortran.so.5 next to it or one folder
/// up (as `dpkg -x` of the Debian packages lays them out) is loaded first.
/// </summary>
static unsafe class OpenBlas
{
    const int RowMajor = 101, NoTrans = 111, Trans = 112;

    static delegate* unmanaged<int, int, int, int, int, int, float, float*, int, float*, int, float, float*, int, void> _sgemm;
    static delegate* unmanaged<int, void> _setThreads;
    static delegate* unmanaged<sbyte*> _corename, _config;

    public static bool Available => _sgemm != null;
    public static string Description { get; private set; } = "";

    /// <summary>Loads the library once; false with the reason when it cannot be found.</summary>
    public static bool TryLoad(out string note)
    {
        note = "";
        if (_sgemm != null) return true;
        string? path = Environment.GetEnvironmentVariable("SBP_OPENBLAS");
        nint lib = 0;
        if (!string.IsNullOrEmpty(path))
        {
            string dir = Path.GetDirectoryName(Path.GetFullPath(path)) ?? ".";
            foreach (var candidate in new[] { Path.Combine(dir, "libgfortran.so.5"), Path.Combine(dir, "..", "libgfortran.so.5") })
                if (File.Exists(candidate)) NativeLibrary.TryLoad(candidate, out _);
            if (!NativeLibrary.TryLoad(path, out lib))
            {
                note = $"OpenBLAS: SBP_OPENBLAS={path} could not be loaded (missing file or dependency); OpenBLAS rows skipped.";
                return false;
            }
        }
        else if (!NativeLibrary.TryLoad("libopenblas.so.0", out lib) && !NativeLibrary.TryLoad("libopenblas.so", out lib) &&
                 !NativeLibrary.TryLoad("libopenblas", out lib))
        {
            note = "OpenBLAS: libopenblas not found (set SBP_OPENBLAS=/path/libopenblas.so.0, see benchmarks/README.md); OpenBLAS rows skipped.";
            return false;
        }
        if (!NativeLibrary.TryGetExport(lib, "cblas_sgemm", out var sgemm))
        {
            note = "OpenBLAS: the library has no cblas_sgemm; OpenBLAS rows skipped.";
            return false;
        }
        _sgemm = (delegate* unmanaged<int, int, int, int, int, int, float, float*, int, float*, int, float, float*, int, void>)sgemm;
        if (NativeLibrary.TryGetExport(lib, "openblas_set_num_threads", out var st)) _setThreads = (delegate* unmanaged<int, void>)st;
        if (NativeLibrary.TryGetExport(lib, "openblas_get_corename", out var cn)) _corename = (delegate* unmanaged<sbyte*>)cn;
        if (NativeLibrary.TryGetExport(lib, "openblas_get_config", out var cf)) _config = (delegate* unmanaged<sbyte*>)cf;
        Description = $"{(_config != null ? new string(_config()) : "OpenBLAS")}, core {(_corename != null ? new string(_corename()) : "?")}";
        return true;
    }

    public static void SetThreads(int threads)
    {
        if (_setThreads != null) _setThreads(threads);
    }

    /// <summary>Row-major C = alpha op(A) op(B) + beta C with contiguous matrices.</summary>
    public static void Sgemm(bool transA, bool transB, int m, int n, int k, float alpha, float* a, float* b, float beta, float* c) =>
        _sgemm(RowMajor, transA ? Trans : NoTrans, transB ? Trans : NoTrans, m, n, k, alpha,
            a, transA ? m : k, b, transB ? k : n, beta, c, n);
}
