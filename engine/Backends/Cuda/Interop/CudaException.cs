namespace Sbp.Backends.Cuda;

/// <summary>
/// A failed call into the CUDA driver, cuBLAS or cuDNN: the library, the function, its status code
/// with the library's own name and description, and the engine op that made the call.
/// </summary>
public sealed class CudaException : Exception
{
    public CudaException(string library, string function, int code, string errorName, string errorString, string op, string? hint = null)
        : base($"{op}: {function} failed with {library} error {errorName} ({code}): {errorString}.{(hint is null ? "" : " " + hint)}")
    {
        Library = library;
        Function = function;
        Code = code;
        ErrorName = errorName;
        ErrorString = errorString;
        Op = op;
    }

    /// <summary>"CUDA driver", "cuBLAS" or "cuDNN".</summary>
    public string Library { get; }
    /// <summary>The exported function that failed, e.g. cuMemAlloc_v2.</summary>
    public string Function { get; }
    public int Code { get; }
    /// <summary>The library's name for the status, e.g. CUDA_ERROR_NO_DEVICE.</summary>
    public string ErrorName { get; }
    public string ErrorString { get; }
    /// <summary>The engine op (or device action) that made the call.</summary>
    public string Op { get; }
}
