using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using Sbp.Memory;

namespace Sbp.Backends.Cuda.Interop;

/// <summary>
/// Turns library status codes into <see cref="CudaException"/>s with the library's own names and strings.
/// <c>Check(CuDriver.MemAlloc(...))</c> names the failing export from the call itself (its
/// <c>[LibraryImport]</c> entry point, e.g. cuMemAlloc_v2); a status from elsewhere passes the name.
/// </summary>
internal static unsafe partial class CudaErrors
{
    internal static void Check(CuResult r, [CallerArgumentExpression(nameof(r))] string call = "")
    {
        if (r != CuResult.Success) throw Driver(r, FunctionOf(call), OpLabel.Current);
    }

    [GeneratedRegex(@"^\s*(?<type>CuDriver|CuBlas|CuDnn)\.(?<method>\w+)\s*\(")]
    private static partial Regex BindingCall();

    static readonly ConcurrentDictionary<string, string> Exports = new();

    /// <summary>The library function a checked call made: the export of a binding (CuDriver.MemFree(...) is cuMemFree_v2), else the text as given.</summary>
    internal static string FunctionOf(string call)
    {
        if (BindingCall().Match(call) is not { Success: true } m) return call;
        string type = m.Groups["type"].Value, method = m.Groups["method"].Value;
        return Exports.GetOrAdd($"{type}.{method}", _ => ExportOf(type switch
        {
            "CuDriver" => typeof(CuDriver),
            "CuBlas" => typeof(CuBlas),
            _ => typeof(CuDnn),
        }, method) ?? method);
    }

    static string? ExportOf([DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicMethods | DynamicallyAccessedMemberTypes.NonPublicMethods)] Type type, string method) =>
        type.GetMethods(BindingFlags.Static | BindingFlags.NonPublic | BindingFlags.Public).FirstOrDefault(x => x.Name == method)
            ?.GetCustomAttribute<LibraryImportAttribute>()?.EntryPoint;

    internal static CudaException Driver(CuResult r, string function, string op)
    {
        string name = r.ToString(), text = "(no description)";
        try
        {
            if (CuDriver.GetErrorName(r, out var n) == CuResult.Success && n != 0) name = Marshal.PtrToStringAnsi(n) ?? name;
            if (CuDriver.GetErrorString(r, out var s) == CuResult.Success && s != 0) text = Marshal.PtrToStringAnsi(s) ?? text;
        }
        catch (DllNotFoundException) { }
        catch (EntryPointNotFoundException) { }
        return new CudaException("CUDA driver", function, (int)r, name, text, op, DriverHint(r));
    }

    static string? DriverHint(CuResult r) => r switch
    {
        CuResult.NoDevice => "No CUDA-capable GPU is visible (check nvidia-smi and CUDA_VISIBLE_DEVICES); use Device.Resolve(\"auto\") to fall back to the CPU.",
        CuResult.StubLibrary => "A CUDA stub libcuda.so was loaded instead of the driver: remove the toolkit's stubs folder from LD_LIBRARY_PATH.",
        CuResult.UnsupportedPtxVersion => "The driver is older than the PTX ISA 7.8 the kernels use (CUDA 11.8 or newer is needed).",
        CuResult.SystemDriverMismatch => "The kernel module and libcuda.so.1 come from different driver versions; reinstall the driver or reboot.",
        _ => null,
    };

    internal static void Check(CublasStatus s, [CallerArgumentExpression(nameof(s))] string call = "")
    {
        if (s == CublasStatus.Success) return;
        string function = FunctionOf(call);
        string name = "CUBLAS_STATUS_" + s.ToString().ToUpperInvariant(), text = "(no description)";
        try
        {
            if (CuBlas.GetStatusName(s) is var n and not 0) name = Marshal.PtrToStringAnsi(n) ?? name;
            if (CuBlas.GetStatusString(s) is var t and not 0) text = Marshal.PtrToStringAnsi(t) ?? text;
        }
        catch (EntryPointNotFoundException) { }
        catch (DllNotFoundException) { }   // the library's own strings are a courtesy: the status name is enough
        throw new CudaException("cuBLAS", function, (int)s, name, text, OpLabel.Current);
    }

    internal static void Check(CudnnStatus s, [CallerArgumentExpression(nameof(s))] string call = "")
    {
        if (s == CudnnStatus.Success) return;
        string function = FunctionOf(call);
        string name = CudnnName(s), text = "(no description)";
        try
        {
            if (CuDnn.GetErrorString(s) is var t and not 0) text = Marshal.PtrToStringAnsi(t) ?? text;
            var buffer = stackalloc byte[512];
            CuDnn.GetLastErrorString(buffer, 512);
            var last = Marshal.PtrToStringAnsi((nint)buffer);
            if (!string.IsNullOrWhiteSpace(last)) text += " (" + last.Trim() + ")";
        }
        catch (EntryPointNotFoundException) { }
        catch (DllNotFoundException) { }   // the library's own strings are a courtesy: the status name is enough
        throw new CudaException("cuDNN", function, (int)s, name, text, OpLabel.Current);
    }

    /// <summary>CUDNN_STATUS_* spelled as cudnn_graph.h does.</summary>
    internal static string CudnnName(CudnnStatus s) => s switch
    {
        CudnnStatus.Success => "CUDNN_STATUS_SUCCESS",
        CudnnStatus.NotInitialized => "CUDNN_STATUS_NOT_INITIALIZED",
        CudnnStatus.SublibraryVersionMismatch => "CUDNN_STATUS_SUBLIBRARY_VERSION_MISMATCH",
        CudnnStatus.Deprecated => "CUDNN_STATUS_DEPRECATED",
        CudnnStatus.LicenseError => "CUDNN_STATUS_LICENSE_ERROR",
        CudnnStatus.SublibraryLoadingFailed => "CUDNN_STATUS_SUBLIBRARY_LOADING_FAILED",
        CudnnStatus.BadParam => "CUDNN_STATUS_BAD_PARAM",
        CudnnStatus.InvalidValue => "CUDNN_STATUS_INVALID_VALUE",
        CudnnStatus.BadParamNullPointer => "CUDNN_STATUS_BAD_PARAM_NULL_POINTER",
        CudnnStatus.NotSupported => "CUDNN_STATUS_NOT_SUPPORTED",
        CudnnStatus.NotSupportedArchMismatch => "CUDNN_STATUS_NOT_SUPPORTED_ARCH_MISMATCH",
        CudnnStatus.InternalError => "CUDNN_STATUS_INTERNAL_ERROR",
        CudnnStatus.InternalErrorHostAllocationFailed => "CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED",
        CudnnStatus.ExecutionFailed => "CUDNN_STATUS_EXECUTION_FAILED",
        CudnnStatus.ExecutionFailedCublas => "CUDNN_STATUS_EXECUTION_FAILED_CUBLAS",
        _ => $"CUDNN_STATUS_{(int)s}",
    };
}
