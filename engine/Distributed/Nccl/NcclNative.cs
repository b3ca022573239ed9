using System.Runtime.InteropServices;
using System.Text;

namespace Sbp.Distributed.Nccl;

// The types of nccl.h (NVIDIA/nccl src/nccl.h.in; values as in v2.30.7, the 2.14 layout of ncclConfig_t as in
// v2.14.3-1). tests/Sbp.Kernels.Tests/Distributed/NcclBindingTests.cs checks them against the header's text.

/// <summary>ncclResult_t. Timeout is new in 2.30; older libraries never return it.</summary>
internal enum NcclResult
{
    Success = 0,
    UnhandledCudaError = 1,
    SystemError = 2,
    InternalError = 3,
    InvalidArgument = 4,
    InvalidUsage = 5,
    RemoteError = 6,
    InProgress = 7,
    Timeout = 8,
}

/// <summary>ncclDataType_t (ncclChar = Int8, ncclInt = Int32, ncclHalf = Float16, ncclFloat = Float32, ncclDouble = Float64).</summary>
internal enum NcclDataType
{
    Int8 = 0,
    Uint8 = 1,
    Int32 = 2,
    Uint32 = 3,
    Int64 = 4,
    Uint64 = 5,
    Float16 = 6,
    Float32 = 7,
    Float64 = 8,
    Bfloat16 = 9,
    Float8e4m3 = 10,
    Float8e5m2 = 11,
}

/// <summary>ncclRedOp_t, the built-in operations (Avg since 2.10).</summary>
internal enum NcclRedOp
{
    Sum = 0,
    Prod = 1,
    Max = 2,
    Min = 3,
    Avg = 4,
}

/// <summary><c>typedef struct { char internal[NCCL_UNIQUE_ID_BYTES]; } ncclUniqueId;</c> with NCCL_UNIQUE_ID_BYTES 128, passed by value.</summary>
[StructLayout(LayoutKind.Sequential, Size = Bytes)]
internal unsafe struct NcclUniqueId
{
    public const int Bytes = 128;
    public fixed byte Internal[Bytes];

    public static NcclUniqueId FromBytes(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length != Bytes) throw new ArgumentException($"an NCCL unique id is {Bytes} bytes, not {bytes.Length}.", nameof(bytes));
        var id = new NcclUniqueId();
        bytes.CopyTo(new Span<byte>(id.Internal, Bytes));
        return id;
    }

    public readonly byte[] ToBytes()
    {
        fixed (byte* p = Internal) return new ReadOnlySpan<byte>(p, Bytes).ToArray();
    }
}

/// <summary>
/// <c>ncclConfig_v21400</c>: <c>{ size_t size; unsigned int magic; unsigned int version; int blocking; }</c>, 24 bytes.
/// Later libraries read <c>size</c> bytes and give every field after them its default (init.cc parseCommConfig, and
/// the fields added in 2.17+ are reset for a version below theirs), so this 2.14 mirror stays valid; 2.14 is the first
/// with nonblocking communicators. There are no other fields to leave unset (NCCL_CONFIG_UNDEF_INT / _PTR) in this layout.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
internal struct NcclConfig
{
    /// <summary>NCCL_API_MAGIC.</summary>
    public const uint ApiMagic = 0xcafebeef;
    /// <summary>NCCL_VERSION(2, 14, 0): the layout this struct mirrors.</summary>
    public const uint LayoutVersion = 21400;

    public nuint Size;
    public uint Magic;
    public uint Version;
    /// <summary>1: calls block until done; 0: they may return ncclInProgress (poll ncclCommGetAsyncError), so ncclCommAbort can always stop them.</summary>
    public int Blocking;

    /// <summary>What NCCL_CONFIG_INITIALIZER gives for this layout, with <see cref="Blocking"/> set.</summary>
    public static unsafe NcclConfig Create(bool blocking) =>
        new() { Size = (nuint)sizeof(NcclConfig), Magic = ApiMagic, Version = LayoutVersion, Blocking = blocking ? 1 : 0 };
}

/// <summary>
/// Our bindings to <c>libnccl.so.2</c>: every function through a pointer from <see cref="NativeLibrary"/> (as
/// <see cref="OpenMpi"/>), so a machine without NCCL loads the engine and gets a clear error only when asked for NCCL.
/// Buffers are device addresses (<c>void*</c>), communicators and streams opaque handles (<c>nint</c>).
/// </summary>
internal static unsafe class NcclNative
{
    public const string Soname = "libnccl.so.2";
    /// <summary>NCCL_VERSION(2, 14, 0): ncclCommInitRankConfig, nonblocking communicators, ncclCommFinalize.</summary>
    public const int MinimumVersion = 21400;

    static readonly object Gate = new();
    static nint _lib;

    public static string LibraryPath { get; private set; } = "";
    public static delegate* unmanaged<int*, NcclResult> GetVersion;
    public static delegate* unmanaged<NcclUniqueId*, NcclResult> GetUniqueId;
    public static delegate* unmanaged<nint*, int, NcclUniqueId, int, NcclConfig*, NcclResult> CommInitRankConfig;
    public static delegate* unmanaged<void*, void*, nuint, NcclDataType, NcclRedOp, nint, nint, NcclResult> AllReduce;
    public static delegate* unmanaged<void*, void*, nuint, NcclDataType, int, nint, nint, NcclResult> Broadcast;
    public static delegate* unmanaged<nint, NcclResult*, NcclResult> CommGetAsyncError;
    public static delegate* unmanaged<nint, NcclResult> CommFinalize, CommDestroy, CommAbort;
    public static delegate* unmanaged<NcclResult, byte*> GetErrorString;
    public static delegate* unmanaged<nint, byte*> GetLastError;

    /// <summary>The export behind each pointer (the C names of nccl.h).</summary>
    public static readonly IReadOnlyList<(string Export, string Field)> Exports =
    [
        ("ncclGetVersion", nameof(GetVersion)), ("ncclGetUniqueId", nameof(GetUniqueId)),
        ("ncclCommInitRankConfig", nameof(CommInitRankConfig)), ("ncclAllReduce", nameof(AllReduce)),
        ("ncclBroadcast", nameof(Broadcast)), ("ncclCommGetAsyncError", nameof(CommGetAsyncError)),
        ("ncclCommFinalize", nameof(CommFinalize)), ("ncclCommDestroy", nameof(CommDestroy)),
        ("ncclCommAbort", nameof(CommAbort)), ("ncclGetErrorString", nameof(GetErrorString)),
        ("ncclGetLastError", nameof(GetLastError)),
    ];

    /// <summary>Loads libnccl.so.2 (<see cref="NcclLibrary.Find"/>) and every symbol once; throws <see cref="DistributedException"/> saying where it looked.</summary>
    public static void Load()
    {
        lock (Gate)
        {
            if (_lib != 0) return;
            var (lib, path) = NcclLibrary.Load();
            nint Get(string name) => NativeLibrary.TryGetExport(lib, name, out var f) ? f
                : throw new DistributedException($"NCCL: {path} has no symbol {name}: it is older than NCCL 2.14, which the engine needs (nonblocking communicators). " + NcclLibrary.InstallHint);
            GetVersion = (delegate* unmanaged<int*, NcclResult>)Get("ncclGetVersion");
            GetUniqueId = (delegate* unmanaged<NcclUniqueId*, NcclResult>)Get("ncclGetUniqueId");
            CommInitRankConfig = (delegate* unmanaged<nint*, int, NcclUniqueId, int, NcclConfig*, NcclResult>)Get("ncclCommInitRankConfig");
            AllReduce = (delegate* unmanaged<void*, void*, nuint, NcclDataType, NcclRedOp, nint, nint, NcclResult>)Get("ncclAllReduce");
            Broadcast = (delegate* unmanaged<void*, void*, nuint, NcclDataType, int, nint, nint, NcclResult>)Get("ncclBroadcast");
            CommGetAsyncError = (delegate* unmanaged<nint, NcclResult*, NcclResult>)Get("ncclCommGetAsyncError");
            CommFinalize = (delegate* unmanaged<nint, NcclResult>)Get("ncclCommFinalize");
            CommDestroy = (delegate* unmanaged<nint, NcclResult>)Get("ncclCommDestroy");
            CommAbort = (delegate* unmanaged<nint, NcclResult>)Get("ncclCommAbort");
            GetErrorString = (delegate* unmanaged<NcclResult, byte*>)Get("ncclGetErrorString");
            GetLastError = (delegate* unmanaged<nint, byte*>)Get("ncclGetLastError");
            int version;
            if (GetVersion(&version) != NcclResult.Success || version < MinimumVersion)
                throw new DistributedException($"NCCL: {path} is version {NcclLibrary.FormatVersion(version)}; the engine needs 2.14 or later (nonblocking communicators). " + NcclLibrary.InstallHint);
            LibraryPath = path;
            _lib = lib;
        }
    }

    /// <summary>A C string the library owns.</summary>
    public static string Text(byte* s) => s is null ? "" : Marshal.PtrToStringUTF8((nint)s) ?? "";

    /// <summary>ncclGetErrorString's words for a result.</summary>
    public static string ErrorString(NcclResult r) => GetErrorString is null ? r.ToString() : Text(GetErrorString(r));

    /// <summary>The C name of a result (ncclInvalidUsage, ...).</summary>
    public static string Name(NcclResult r) => Enum.IsDefined(r) ? "nccl" + r : $"ncclResult {(int)r}";
}

/// <summary>Where libnccl.so.2 is looked for, and what to say when it is not found.</summary>
internal static class NcclLibrary
{
    public const string InstallHint =
        "Install it with `pip install nvidia-nccl-cu12` (or nvidia-nccl-cu13, matching the CUDA major version), or put the folder holding " +
        "libnccl.so.2 on LD_LIBRARY_PATH or in " + Sbp.Backends.Cuda.Interop.CudaLibraries.DirsVariable + ".";

    /// <summary>
    /// The first <c>libnccl.so.2</c> in <paramref name="directories"/> (the CUDA library search: SBP_CUDA_LIB_DIRS, the
    /// Python environments' <c>site-packages/nvidia/*/lib</c>, which holds the nvidia-nccl wheels' <c>nvidia/nccl/lib</c>,
    /// then /usr/local/cuda), or null.
    /// </summary>
    public static string? Find(IEnumerable<string> directories) =>
        directories.Select(d => Path.Combine(d, NcclNative.Soname)).FirstOrDefault(File.Exists);

    /// <summary>Loads it from the CUDA library folders, else by the system's search (LD_LIBRARY_PATH, ld.so.cache).</summary>
    public static (nint Handle, string Path) Load()
    {
        var dirs = Sbp.Backends.Cuda.Interop.CudaLibraries.SearchDirectories();
        if (Find(dirs) is { } path)
        {
            try
            {
                return (NativeLibrary.Load(path), path);
            }
            catch (Exception e) when (e is DllNotFoundException or BadImageFormatException)
            {
                throw new DistributedException($"NCCL: {path} exists but could not be loaded: {e.Message} " + InstallHint, e);
            }
        }
        if (NativeLibrary.TryLoad(NcclNative.Soname, out var handle)) return (handle, NcclNative.Soname + " (system search)");
        throw new DistributedException(NotFoundMessage(dirs));
    }

    public static string NotFoundMessage(IReadOnlyList<string> searched) =>
        $"NCCL: {NcclNative.Soname} not found. Looked in {(searched.Count == 0 ? "the CUDA library folders (SBP_CUDA_LIB_DIRS, Python site-packages/nvidia/*/lib, /usr/local/cuda/lib64: none exists here)" : string.Join(", ", searched))}, " +
        $"then the system's library path (LD_LIBRARY_PATH, ld.so.cache). {InstallHint} (CPU ranks need no NCCL: --dist mpi.)";

    /// <summary>NCCL's version code as major.minor.patch (X*10000 + Y*100 + Z from 2.9; X*1000 + Y*100 + Z before).</summary>
    public static string FormatVersion(int code) => code >= 20900
        ? $"{code / 10000}.{code % 10000 / 100}.{code % 100}"
        : $"{code / 1000}.{code % 1000 / 100}.{code % 100}";
}
