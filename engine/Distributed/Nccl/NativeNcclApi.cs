namespace Sbp.Distributed.Nccl;

/// <summary><see cref="INcclApi"/> over libnccl.so.2 (<see cref="NcclNative"/>), loaded on first use.</summary>
internal sealed unsafe class NativeNcclApi : INcclApi
{
    NativeNcclApi()
    {
        int version;
        if (NcclNative.GetVersion(&version) != NcclResult.Success) version = 0;
        Version = version;
        Description = $"NCCL {NcclLibrary.FormatVersion(version)} ({NcclNative.LibraryPath})";
    }

    /// <summary>The library, loaded once (throws <see cref="DistributedException"/> saying where it looked when it is missing or too old).</summary>
    public static NativeNcclApi Load()
    {
        NcclNative.Load();
        return Instance.Value;
    }

    static readonly Lazy<NativeNcclApi> Instance = new(() => new NativeNcclApi());

    public string Description { get; }
    public int Version { get; }

    public NcclResult GetUniqueId(out NcclUniqueId id)
    {
        NcclUniqueId value;
        var r = NcclNative.GetUniqueId(&value);
        id = value;
        return r;
    }

    public NcclResult CommInitRankConfig(out nint comm, int ranks, NcclUniqueId id, int rank, in NcclConfig config)
    {
        nint c = 0;
        var copy = config;   // NCCL reads it during the call only
        var r = NcclNative.CommInitRankConfig(&c, ranks, id, rank, &copy);
        comm = c;
        return r;
    }

    public NcclResult AllReduce(ulong send, ulong receive, ulong count, NcclDataType type, NcclRedOp op, nint comm, nint stream) =>
        NcclNative.AllReduce((void*)send, (void*)receive, (nuint)count, type, op, comm, stream);

    public NcclResult Broadcast(ulong send, ulong receive, ulong count, NcclDataType type, int root, nint comm, nint stream) =>
        NcclNative.Broadcast((void*)send, (void*)receive, (nuint)count, type, root, comm, stream);

    public NcclResult CommGetAsyncError(nint comm, out NcclResult asyncError)
    {
        NcclResult e;
        var r = NcclNative.CommGetAsyncError(comm, &e);
        asyncError = e;
        return r;
    }

    public NcclResult CommFinalize(nint comm) => NcclNative.CommFinalize(comm);
    public NcclResult CommDestroy(nint comm) => NcclNative.CommDestroy(comm);
    public NcclResult CommAbort(nint comm) => NcclNative.CommAbort(comm);
    public string ErrorString(NcclResult result) => NcclNative.ErrorString(result);
    public string LastError(nint comm) => NcclNative.Text(NcclNative.GetLastError(comm));
}
