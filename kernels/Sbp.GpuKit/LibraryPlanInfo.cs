using Sbp.Backends.Cuda.Interop;

namespace Sbp.GpuKit;

/// <summary>
/// What the engine will load, decided before loading (<see cref="CudaLibraryPlan"/>): the cuBLAS pair and the cuDNN folder
/// (null: not found), the refusal of a CUDA-version mix if any, incomplete cuDNN folders, and the folders searched.
/// </summary>
public sealed record LibraryPlanInfo(string? Cublas, int? CublasMajor, string? CudnnFolder, int? CudnnWheelMajor, string? Mismatch,
    IReadOnlyList<string> Problems, IReadOnlyList<string> Folders)
{
    public static LibraryPlanInfo Find()
    {
        var search = CudaLibrarySearch.Machine;
        var plan = CudaLibraryPlan.Make(search.Directories(), search.Places());
        return new LibraryPlanInfo(plan.Cublas?.Blas, plan.Cublas?.Major, plan.Cudnn?.Directory, plan.Cudnn?.WheelMajor, plan.WheelMismatch(),
            plan.CudnnProblems, plan.Folders);
    }

    /// <summary>Lines for the console: the cuBLAS and cuDNN the engine will load, any refusal, and the folders searched.</summary>
    public IEnumerable<string> Describe()
    {
        yield return Cublas is null ? "cuBLAS to load: none found (libcublasLt + libcublas .13 or .12)" : $"cuBLAS to load: {Cublas} (CUDA {CublasMajor}), libcublasLt next to it";
        yield return CudnnFolder is null ? "cuDNN 9 to load: no complete folder found" : $"cuDNN 9 to load: from {CudnnFolder}{(CudnnWheelMajor is { } m ? $" (a wheel for CUDA {m})" : "")}";
        if (Mismatch is not null) yield return "refused: " + Mismatch;
        foreach (var p in Problems) yield return "incomplete cuDNN folder: " + p;
        yield return Folders.Count == 0 ? "folders searched: none of the usual places exists"
            : $"folders searched ({Folders.Count}): {string.Join(", ", Folders.Take(8))}{(Folders.Count > 8 ? ", ..." : "")}";
    }
}
