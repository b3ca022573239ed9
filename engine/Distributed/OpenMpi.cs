using System.Runtime.InteropServices;
using System.Text;

namespace Sbp.Distributed;

/// <summary>
/// Our bindings to Open MPI's C library (<c>libmpi.so.40</c>, Debian's <c>libopenmpi3</c>): functions through
/// function pointers, and the predefined handles as Open MPI defines them, the addresses of exported globals
/// (<c>MPI_COMM_WORLD = &amp;ompi_mpi_comm_world</c>, include/mpi.h). MPICH's handles are integers
/// (<c>MPI_COMM_WORLD = 0x44000000</c>), so it needs other signatures: not supported (docs/DISTRIBUTED.md).
/// </summary>
internal static unsafe class OpenMpi
{
    public const int Success = 0;
    public const int ThreadSerialized = 2;
    /// <summary>MPI_IN_PLACE in Open MPI's mpi.h.</summary>
    public static readonly void* InPlace = (void*)1;

    /// <summary>The library file: SBP_MPI_LIBRARY, else the soname Debian installs.</summary>
    public static string LibraryName => Environment.GetEnvironmentVariable("SBP_MPI_LIBRARY") is { Length: > 0 } path ? path : "libmpi.so.40";

    static nint _lib;
    public static nint CommWorld, Float, Double, Byte, OpSum, ErrorsReturn;
    public static delegate* unmanaged<int*, int> Initialized, Finalized;
    public static delegate* unmanaged<int*, byte***, int, int*, int> InitThread;
    public static delegate* unmanaged<int> Finalize;
    public static delegate* unmanaged<nint, int*, int> CommRank, CommSize;
    public static delegate* unmanaged<nint, nint, int> CommSetErrhandler;
    public static delegate* unmanaged<void*, void*, int, nint, nint, nint, nint*, int> Iallreduce;
    public static delegate* unmanaged<void*, int, nint, int, nint, nint*, int> Ibcast;
    public static delegate* unmanaged<nint, nint*, int> Ibarrier;
    public static delegate* unmanaged<nint*, int*, void*, int> Test;
    public static delegate* unmanaged<nint, int, int> Abort;
    public static delegate* unmanaged<int, byte*, int*, int> ErrorString;
    public static delegate* unmanaged<byte*, int*, int> GetLibraryVersion;

    /// <summary>Loads the library and every symbol once; a clear error when Open MPI is not installed.</summary>
    public static void Load()
    {
        if (_lib != 0) return;
        if (!NativeLibrary.TryLoad(LibraryName, out var lib))
            throw new DistributedException($"MPI: {LibraryName} could not be loaded. Install Open MPI (Debian: apt-get install openmpi-bin), " +
                "or set SBP_MPI_LIBRARY to Open MPI's libmpi.so; MPICH and Intel MPI use another ABI and are not supported.");
        nint Get(string name) => NativeLibrary.TryGetExport(lib, name, out var f) ? f
            : throw new DistributedException($"MPI: {LibraryName} has no symbol {name}: it is not Open MPI 4 or later (MPICH and Intel MPI use another ABI and are not supported).");
        CommWorld = Get("ompi_mpi_comm_world");
        Float = Get("ompi_mpi_float");
        Double = Get("ompi_mpi_double");
        Byte = Get("ompi_mpi_byte");
        OpSum = Get("ompi_mpi_op_sum");
        ErrorsReturn = Get("ompi_mpi_errors_return");
        Initialized = (delegate* unmanaged<int*, int>)Get("MPI_Initialized");
        Finalized = (delegate* unmanaged<int*, int>)Get("MPI_Finalized");
        InitThread = (delegate* unmanaged<int*, byte***, int, int*, int>)Get("MPI_Init_thread");
        Finalize = (delegate* unmanaged<int>)Get("MPI_Finalize");
        CommRank = (delegate* unmanaged<nint, int*, int>)Get("MPI_Comm_rank");
        CommSize = (delegate* unmanaged<nint, int*, int>)Get("MPI_Comm_size");
        CommSetErrhandler = (delegate* unmanaged<nint, nint, int>)Get("MPI_Comm_set_errhandler");
        Iallreduce = (delegate* unmanaged<void*, void*, int, nint, nint, nint, nint*, int>)Get("MPI_Iallreduce");
        Ibcast = (delegate* unmanaged<void*, int, nint, int, nint, nint*, int>)Get("MPI_Ibcast");
        Ibarrier = (delegate* unmanaged<nint, nint*, int>)Get("MPI_Ibarrier");
        Test = (delegate* unmanaged<nint*, int*, void*, int>)Get("MPI_Test");
        Abort = (delegate* unmanaged<nint, int, int>)Get("MPI_Abort");
        ErrorString = (delegate* unmanaged<int, byte*, int*, int>)Get("MPI_Error_string");
        GetLibraryVersion = (delegate* unmanaged<byte*, int*, int>)Get("MPI_Get_library_version");
        _lib = lib;
    }

    /// <summary>Throws with MPI's own words when <paramref name="code"/> is not MPI_SUCCESS.</summary>
    public static void Check(int code, string call, string what)
    {
        if (code == Success) return;
        var text = new byte[256];   // MPI_MAX_ERROR_STRING
        int length = 0;
        fixed (byte* p = text)
            if (ErrorString(code, p, &length) != Success) length = 0;
        throw new DistributedException($"MPI: {call} for {what} failed with error {code}: {Encoding.ASCII.GetString(text, 0, Math.Clamp(length, 0, 256))}.");
    }

    /// <summary>The library's own version line (MPI_Get_library_version).</summary>
    public static string Version()
    {
        var text = new byte[8192];   // MPI_MAX_LIBRARY_VERSION_STRING is 256 in Open MPI; room to spare
        int length = 0;
        fixed (byte* p = text) Check(GetLibraryVersion(p, &length), "MPI_Get_library_version", "the version");
        return Encoding.ASCII.GetString(text, 0, Math.Clamp(length, 0, text.Length)).Split('\n')[0].Trim('\0', ' ', ',');
    }
}
