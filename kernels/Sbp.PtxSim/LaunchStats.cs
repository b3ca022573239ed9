using System.Globalization;
using System.Text;

namespace Sbp.PtxSim;

/// <summary>
/// Counts of one launch, for kernel-level profiling. Thread-level counts include only lanes whose guard predicate
/// was true; warp-level counts include every issue. Atomics and reductions on global memory count as global requests
/// that both load and store their bytes.
/// </summary>
public sealed class LaunchStats
{
    internal LaunchStats(string kernel, Dim3 grid, Dim3 block, uint dynamicSharedBytes, int sharedBytes, IReadOnlyDictionary<string, long> byKind,
        long instructions, long warpInstructions, long bytesLoaded, long bytesStored, long globalRequests, long globalTransactions,
        long sharedRequests, long sharedBankConflicts)
    {
        Kernel = kernel;
        Grid = grid;
        Block = block;
        DynamicSharedBytes = dynamicSharedBytes;
        SharedBytesPerBlock = sharedBytes;
        InstructionsByKind = byKind;
        Instructions = instructions;
        WarpInstructions = warpInstructions;
        BytesLoaded = bytesLoaded;
        BytesStored = bytesStored;
        GlobalRequests = globalRequests;
        GlobalTransactions = globalTransactions;
        SharedRequests = sharedRequests;
        SharedBankConflicts = sharedBankConflicts;
    }

    /// <summary>The entry that ran.</summary>
    public string Kernel { get; }
    /// <summary>Launch grid shape.</summary>
    public Dim3 Grid { get; }
    /// <summary>Launch block shape.</summary>
    public Dim3 Block { get; }
    /// <summary>Dynamic shared memory requested by the launch.</summary>
    public uint DynamicSharedBytes { get; }
    /// <summary>Static plus dynamic shared memory per block.</summary>
    public int SharedBytesPerBlock { get; }

    /// <summary>Thread-instructions by opcode as written with its modifiers and types (e.g. "ld.global.v4.f32").</summary>
    public IReadOnlyDictionary<string, long> InstructionsByKind { get; }
    /// <summary>Thread-instructions executed.</summary>
    public long Instructions { get; }
    /// <summary>Warp-level instruction issues.</summary>
    public long WarpInstructions { get; }
    /// <summary>Bytes read from global memory.</summary>
    public long BytesLoaded { get; }
    /// <summary>Bytes written to global memory.</summary>
    public long BytesStored { get; }
    /// <summary>Warp-level global load/store/atomic instructions with at least one active lane.</summary>
    public long GlobalRequests { get; }
    /// <summary>Distinct 32-byte sectors touched per warp request, summed over requests.</summary>
    public long GlobalTransactions { get; }
    /// <summary>Warp-level shared load/store/atomic instructions with at least one active lane.</summary>
    public long SharedRequests { get; }
    /// <summary>Extra shared-memory wavefronts caused by bank conflicts (32 banks of 4 bytes), summed over requests.</summary>
    public long SharedBankConflicts { get; }

    /// <summary>Average sectors per global request (4 for coalesced 4-byte accesses, 32 for fully scattered ones).</summary>
    public double TransactionsPerRequest => GlobalRequests == 0 ? 0 : (double)GlobalTransactions / GlobalRequests;

    /// <summary>A readable table of the counts.</summary>
    public override string ToString()
    {
        var c = CultureInfo.InvariantCulture;
        var s = new StringBuilder();
        s.Append(c, $"kernel {Kernel}  grid {Grid}  block {Block}  shared/block {SharedBytesPerBlock} B (dynamic {DynamicSharedBytes} B)").AppendLine();
        s.Append(c, $"  {"instructions (thread)",-28}{Instructions,16:N0}").AppendLine();
        s.Append(c, $"  {"instructions (warp issues)",-28}{WarpInstructions,16:N0}").AppendLine();
        s.Append(c, $"  {"global bytes loaded",-28}{BytesLoaded,16:N0}").AppendLine();
        s.Append(c, $"  {"global bytes stored",-28}{BytesStored,16:N0}").AppendLine();
        s.Append(c, $"  {"global requests",-28}{GlobalRequests,16:N0}").AppendLine();
        s.Append(c, $"  {"global sectors (32 B)",-28}{GlobalTransactions,16:N0}   ({TransactionsPerRequest:F2} per request)").AppendLine();
        s.Append(c, $"  {"shared requests",-28}{SharedRequests,16:N0}").AppendLine();
        s.Append(c, $"  {"shared bank conflicts",-28}{SharedBankConflicts,16:N0}").AppendLine();
        s.AppendLine("  by kind:");
        var kinds = new List<KeyValuePair<string, long>>(InstructionsByKind);
        kinds.Sort((a, b) => b.Value != a.Value ? b.Value.CompareTo(a.Value) : string.CompareOrdinal(a.Key, b.Key));
        foreach (var (k, v) in kinds)
            s.Append(c, $"    {k,-30}{v,16:N0}").AppendLine();
        return s.ToString();
    }
}
