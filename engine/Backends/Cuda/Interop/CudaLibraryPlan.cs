namespace Sbp.Backends.Cuda.Interop;

/// <summary>A cuBLAS pair in one folder: libcublasLt (loaded first) and libcublas, with the CUDA major of their soname (.12, .13).</summary>
public sealed record CublasFiles(string Lt, string Blas, int Major);

/// <summary>A folder holding every cuDNN 9 file, and the CUDA major its pip wheel's name declares (nvidia_cudnn_cu12-*.dist-info), if any.</summary>
public sealed record CudnnFolder(string Directory, int? WheelMajor)
{
    /// <summary>The shim, libcudnn.so.9, whose cudnnGetCudartVersion is read after loading.</summary>
    public string Shim => Path.Combine(Directory, "libcudnn.so.9");
}

/// <summary>
/// The decision of what to load, separate from the loading so that it is tested on fake folders:
/// which cuBLAS pair and which cuDNN folder, in what order, and the refusals (not found, incomplete,
/// CUDA versions that do not match, a driver too old). <see cref="CudaLibraries"/> performs it.
/// cuBLAS always comes before cuDNN: cuDNN 9 opens <c>libcublasLt.so.N</c> by name, which only finds
/// the wheel's copy (in another folder) if that copy is already loaded. cuDNN built for CUDA 12 next
/// to cuBLAS 13 would open a cublasLt that is not there, so the CUDA majors must be equal.
/// </summary>
public sealed class CudaLibraryPlan
{
    /// <summary>cuBLAS sonames tried in each folder, newest first.</summary>
    public static readonly IReadOnlyList<int> CublasMajors = [13, 12];

    CudaLibraryPlan(CublasFiles? cublas, CudnnFolder? cudnn, IReadOnlyList<string> cudnnProblems, IReadOnlyList<string> folders, IReadOnlyList<string> places)
    {
        Cublas = cublas;
        Cudnn = cudnn;
        CudnnProblems = cudnnProblems;
        Folders = folders;
        Places = places;
    }

    /// <summary>The cuBLAS pair to use (the one already loaded, if any), or null when none was found.</summary>
    public CublasFiles? Cublas { get; }
    /// <summary>The cuDNN folder to use, or null when no folder holds all of <see cref="CudaLibraries.CudnnFiles"/>.</summary>
    public CudnnFolder? Cudnn { get; }
    /// <summary>Folders holding libcudnn.so.9 but missing some sub-library.</summary>
    public IReadOnlyList<string> CudnnProblems { get; }
    /// <summary>The folders searched, in order.</summary>
    public IReadOnlyList<string> Folders { get; }
    /// <summary>The variables and patterns behind <see cref="Folders"/>, named when nothing is found.</summary>
    public IReadOnlyList<string> Places { get; }

    /// <summary>
    /// Chooses from <paramref name="folders"/> (in search order). With cuBLAS already loaded, the first
    /// complete cuDNN folder whose wheel does not declare another CUDA major; without, the first complete
    /// cuDNN folder that some cuBLAS pair can match, then the first cuBLAS pair of cuDNN's major (any pair
    /// when the major is unknown). So loading cuBLAS alone and loading cuDNN make the same choice.
    /// </summary>
    public static CudaLibraryPlan Make(IReadOnlyList<string> folders, IReadOnlyList<string> places, CublasFiles? loaded = null)
    {
        var pairs = CublasPairs(folders).ToList();
        var cudnn = CudnnFolders(folders, out var problems);
        bool Fits(CudnnFolder f, IEnumerable<int> majors) => f.WheelMajor is not { } m || majors.Contains(m);
        List<int> majors = loaded is not null ? [loaded.Major] : pairs.Select(p => p.Major).ToList();
        var dnn = cudnn.FirstOrDefault(f => Fits(f, majors)) ?? cudnn.FirstOrDefault();
        var blas = loaded ?? pairs.FirstOrDefault(p => dnn?.WheelMajor == p.Major) ?? pairs.FirstOrDefault();
        return new CudaLibraryPlan(blas, dnn, problems, folders, places);
    }

    /// <summary>The files to load for cuBLAS, in order: libcublasLt, then libcublas (which needs it).</summary>
    public IReadOnlyList<string> CublasLoadOrder() => Cublas is null ? [] : [Cublas.Lt, Cublas.Blas];

    /// <summary>
    /// The files to load for cuDNN, in order: cuBLAS first unless already loaded, then the cuDNN
    /// sub-libraries (and the optional ones the folder has), the shim last (a shim missing a sub-library aborts the process).
    /// </summary>
    public IReadOnlyList<string> CudnnLoadOrder(bool cublasLoaded)
    {
        if (Cudnn is null) return [];
        var files = cublasLoaded ? new List<string>() : CublasLoadOrder().ToList();
        var cudnn = CudaLibraries.CudnnFiles.Select(f => Path.Combine(Cudnn.Directory, f)).ToList();
        var optional = CudaLibraries.CudnnOptionalFiles.Select(f => Path.Combine(Cudnn.Directory, f)).Where(File.Exists);
        cudnn.InsertRange(cudnn.Count - 1, optional);   // the shim stays last
        files.AddRange(cudnn);
        return files;
    }

    /// <summary>Every cuBLAS pair in <paramref name="folders"/>, in folder order, .13 before .12 within a folder.</summary>
    public static IEnumerable<CublasFiles> CublasPairs(IEnumerable<string> folders)
    {
        foreach (var dir in folders)
            foreach (var major in CublasMajors)
            {
                string lt = Path.Combine(dir, $"libcublasLt.so.{major}"), blas = Path.Combine(dir, $"libcublas.so.{major}");
                if (File.Exists(lt) && File.Exists(blas)) yield return new CublasFiles(lt, blas, major);
            }
    }

    /// <summary>The folders holding every cuDNN 9 file, in order; folders with only some are reported in <paramref name="problems"/>.</summary>
    public static List<CudnnFolder> CudnnFolders(IEnumerable<string> folders, out List<string> problems)
    {
        problems = [];
        var found = new List<CudnnFolder>();
        foreach (var dir in folders)
        {
            if (!File.Exists(Path.Combine(dir, "libcudnn.so.9"))) continue;
            var missing = CudaLibraries.CudnnFiles.Where(f => !File.Exists(Path.Combine(dir, f))).ToList();
            if (missing.Count == 0) found.Add(new CudnnFolder(dir, WheelMajor(dir)));
            else problems.Add($"{dir} has libcudnn.so.9 but lacks {string.Join(", ", missing)}");
        }
        return found;
    }

    /// <summary>
    /// For a wheel folder <c>site-packages/nvidia/X/lib</c>: the N of the one <c>nvidia_cudnn_cuN-*.dist-info</c>
    /// in that site-packages (null when there is none, or several, or the folder is not a wheel's).
    /// Read before loading, so an obvious mix is refused without loading anything.
    /// </summary>
    public static int? WheelMajor(string cudnnDirectory)
    {
        var nvidia = Path.GetDirectoryName(Path.GetDirectoryName(Path.TrimEndingDirectorySeparator(cudnnDirectory)));
        if (nvidia is null || Path.GetFileName(nvidia) != "nvidia" || Path.GetDirectoryName(nvidia) is not { } sitePackages) return null;
        try
        {
            var majors = Directory.GetDirectories(sitePackages, "nvidia_cudnn_cu*-*.dist-info")
                .Select(d => Path.GetFileName(d)["nvidia_cudnn_cu".Length..].Split('-')[0])
                .Select(s => int.TryParse(s, out var m) ? m : (int?)null).Distinct().ToList();
            return majors.Count == 1 ? majors[0] : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    // ---- refusals --------------------------------------------------------------------------------

    /// <summary>No cuBLAS pair: which pairs were wanted, where they were looked for, and what to do.</summary>
    public string CublasNotFound(string? why = null) =>
        $"cuBLAS not found: no folder holds libcublasLt.so.13 + libcublas.so.13 (or the .12 pair){why}. {Searched()} " +
        $"Install the cuBLAS wheel of your CUDA version (nvidia-cublas for CUDA 13, nvidia-cublas-cu12 for CUDA 12) or the CUDA toolkit, " +
        $"or set {CudaLibraries.DirsVariable} to the folder holding both files.";

    /// <summary>No complete cuDNN 9 folder: the incomplete ones, where it was looked for, and what to do.</summary>
    public string CudnnNotFound() =>
        "cuDNN 9 not found complete: " + (CudnnProblems.Count > 0 ? string.Join("; ", CudnnProblems) : "no folder holds libcudnn.so.9") +
        $". {Searched()} Install the cuDNN wheel matching cuBLAS's CUDA version (nvidia-cudnn-cu13 or nvidia-cudnn-cu12), " +
        $"or set {CudaLibraries.DirsVariable} to a folder holding all of {string.Join(", ", CudaLibraries.CudnnFiles)}.";

    /// <summary>The refusal of a cuDNN wheel declaring another CUDA major than the cuBLAS chosen, before anything is loaded; null when fine or unknown.</summary>
    public string? WheelMismatch() =>
        Cublas is { } b && Cudnn is { WheelMajor: { } m } d && m != b.Major
            ? Mismatch(d.Shim, $"CUDA {m} (its wheel is nvidia-cudnn-cu{m})", m, b.Blas, $"CUDA {b.Major} (soname .{b.Major})", b.Major)
            : null;

    /// <summary>
    /// The check after loading: cuDNN's <c>cudnnGetCudartVersion</c> (e.g. 12080 for CUDA 12.8) against
    /// cuBLAS's CUDA version (<c>cublasGetCudartVersion</c>, or the soname's major times 1000); null when the majors agree.
    /// </summary>
    public static string? CheckVersions(string cublasFile, int cublasCudart, string cudnnFile, int cudnnCudart) =>
        cublasCudart / 1000 == cudnnCudart / 1000
            ? null
            : Mismatch(cudnnFile, $"CUDA {Format(cudnnCudart)} (cudnnGetCudartVersion {cudnnCudart})", cudnnCudart / 1000,
                cublasFile, $"CUDA {Format(cublasCudart)} (version {cublasCudart})", cublasCudart / 1000);

    static string Mismatch(string cudnnFile, string cudnnWhat, int cudnnMajor, string cublasFile, string cublasWhat, int cublasMajor) =>
        $"cuDNN and cuBLAS are built for different CUDA versions: {cudnnFile} is for {cudnnWhat}, {cublasFile} is for {cublasWhat}. " +
        $"cuDNN 9 opens libcublasLt.so.{cudnnMajor} by name, which is not the one loaded, so it is refused before any cuDNN call. " +
        $"Install the matching cuDNN wheel (nvidia-cudnn-cu{cublasMajor} for CUDA {cublasMajor}) or the CUDA {cudnnMajor} cuBLAS " +
        $"({(cudnnMajor >= 13 ? "nvidia-cublas" : $"nvidia-cublas-cu{cudnnMajor}")}), or set {CudaLibraries.DirsVariable} to folders " +
        "holding a cuBLAS and a cuDNN of one CUDA version.";

    /// <summary>
    /// The driver must support the libraries' CUDA major (cuDriverGetVersion at least major x 1000; minor
    /// versions are compatible within a major). Null when it does, or when the driver's version is unknown.
    /// </summary>
    public static string? CheckDriver(int? driverVersion, int runtimeMajor, string library)
    {
        if (driverVersion is not { } v || v >= runtimeMajor * 1000) return null;
        string needs = runtimeMajor switch { 12 => " (driver 525 or newer)", 13 => " (driver 580 or newer)", _ => "" };
        return $"The NVIDIA driver supports CUDA up to {Format(v)} (cuDriverGetVersion {v}), but {library} is built for CUDA {runtimeMajor}. " +
            $"Update the driver to one for CUDA {runtimeMajor}{needs}, or use the CUDA {v / 1000} libraries " +
            $"(nvidia-cublas-cu{v / 1000} and nvidia-cudnn-cu{v / 1000}) through {CudaLibraries.DirsVariable}.";
    }

    /// <summary>A CUDA version code as major.minor (12080 -> 12.8).</summary>
    public static string Format(int version) => $"{version / 1000}.{version % 1000 / 10}";

    /// <summary>The folders searched (or, when none exists or very many do, the places behind them).</summary>
    string Searched() =>
        Folders.Count is > 0 and <= 40
            ? $"Searched {Folders.Count} folder(s): {string.Join(", ", Folders)}."
            : $"Searched {(Folders.Count == 0 ? "no existing folder" : $"{Folders.Count} folders")}; looked at: {string.Join(", ", Places)}.";
}
