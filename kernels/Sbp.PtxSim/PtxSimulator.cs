using System.Buffers.Binary;
using Sbp.PtxSim.Execution;
using Sbp.PtxSim.Model;

namespace Sbp.PtxSim;

/// <summary>
/// Runs kernels of a <see cref="PtxModule"/> on the CPU against a <see cref="SimMemory"/>, checking every global
/// and shared access, shared-memory races between warps, barriers and warp-collective contracts. What a GPU leaves
/// open is seeded rather than idealised (<see cref="Seed"/>): .approx results carry an error within their documented
/// bound, and blocks, warps between barriers and the lanes of an atomic run in seeded orders. A simulator replays the
/// same results for the same seed and sequence of launches. Not thread-safe: one launch at a time per simulator.
/// </summary>
public sealed class PtxSimulator(SimMemory memory)
{
    private readonly RaceDetector _race = new();
    private long _launches;

    /// <summary>
    /// The seed <see cref="Seed"/> starts from: SBP_PTXSIM_SEED (decimal, or hexadecimal with 0x) when set, so a whole
    /// test run can be repeated under another seed, else 0x5EED.
    /// </summary>
    public static ulong DefaultSeed { get; } = ParseSeed(Environment.GetEnvironmentVariable("SBP_PTXSIM_SEED"));

    /// <summary>
    /// Keys the hardware model: the error of each .approx / .full result (a function of seed, operation and input
    /// bits) and the order of blocks, of warps after each barrier, and of the lanes of each atomic (a function of
    /// seed and the launch's number on this simulator).
    /// </summary>
    public ulong Seed { get; set; } = DefaultSeed;

    /// <summary>The simulated device memory.</summary>
    public SimMemory Memory { get; } = memory ?? throw new ArgumentNullException(nameof(memory));

    /// <summary>Shared memory a block may use (static + dynamic). Default 48 KiB, CUDA's limit without an opt-in.</summary>
    public int MaxSharedBytesPerBlock { get; set; } = 48 * 1024;

    /// <summary>A launch that issues more warp instructions than this fails (guards tests against endless loops).</summary>
    public long WarpInstructionLimit { get; set; } = 500_000_000;

    /// <summary>Runs <paramref name="entry"/> over <paramref name="grid"/> x <paramref name="block"/> threads and returns its counts.</summary>
    public LaunchStats Launch(PtxModule module, string entry, Dim3 grid, Dim3 block, uint dynamicSharedBytes, params KernelArg[] args)
    {
        ArgumentNullException.ThrowIfNull(module);
        ArgumentNullException.ThrowIfNull(args);
        var e = module.GetEntry(entry);
        ValidateShape(e, grid, block);
        long shared = (long)e.DynamicSharedOffset + dynamicSharedBytes;
        if (dynamicSharedBytes == 0) shared = e.StaticSharedBytes;
        if (shared > MaxSharedBytesPerBlock)
            throw new ArgumentException(
                $"Launch of {e.Name}: {shared} bytes of shared memory per block (static {e.StaticSharedBytes} + dynamic {dynamicSharedBytes}) exceed the limit of {MaxSharedBytesPerBlock}.",
                nameof(dynamicSharedBytes));
        var param = PackParams(e, args);
        var m = new Machine(e, Memory, param, grid, block, (int)shared, _race, WarpInstructionLimit, Seed, _launches++);
        m.Run();
        var byKind = new Dictionary<string, long>(StringComparer.Ordinal);
        for (int k = 0; k < e.KindNames.Length; k++)
            if (m.KindCounts[k] != 0) byKind[e.KindNames[k]] = m.KindCounts[k];
        return new LaunchStats(e.Name, grid, block, dynamicSharedBytes, (int)shared, byKind, m.Instructions, m.WarpInstructions,
            m.BytesLoaded, m.BytesStored, m.GlobalRequests, m.GlobalTransactions, m.SharedRequests, m.SharedBankConflicts);
    }

    private static ulong ParseSeed(string? text)
    {
        if (string.IsNullOrWhiteSpace(text)) return 0x5EED;
        text = text.Trim();
        bool hex = text.StartsWith("0x", StringComparison.OrdinalIgnoreCase);
        var style = hex ? System.Globalization.NumberStyles.AllowHexSpecifier : System.Globalization.NumberStyles.None;
        return ulong.TryParse(hex ? text[2..] : text, style, System.Globalization.CultureInfo.InvariantCulture, out ulong v)
            ? v
            : throw new InvalidOperationException($"SBP_PTXSIM_SEED='{text}' is not a decimal or 0x-hexadecimal 64-bit integer.");
    }

    private static void ValidateShape(PtxEntry e, Dim3 grid, Dim3 block)
    {
        if (block.X == 0 || block.Y == 0 || block.Z == 0 || block.X > 1024 || block.Y > 1024 || block.Z > 64 || block.Volume > 1024)
            throw new ArgumentException($"Launch of {e.Name}: block {block} is invalid (each dimension >= 1, x,y <= 1024, z <= 64, at most 1024 threads).", nameof(block));
        if (grid.X == 0 || grid.Y == 0 || grid.Z == 0 || grid.X > int.MaxValue || grid.Y > 65535 || grid.Z > 65535)
            throw new ArgumentException($"Launch of {e.Name}: grid {grid} is invalid (x in [1, 2^31-1], y and z in [1, 65535]).", nameof(grid));
        if (e.ReqNtid is { } req && req != block)
            throw new ArgumentException($"Launch of {e.Name}: the kernel requires block {req} (.reqntid) but was launched with {block}.", nameof(block));
        if (e.MaxNtid is { } max && block.Volume > max.Volume)
            throw new ArgumentException($"Launch of {e.Name}: block {block} has more threads than .maxntid {max} allows.", nameof(block));
    }

    private static byte[] PackParams(PtxEntry e, KernelArg[] args)
    {
        if (args.Length != e.Params.Length)
            throw new ArgumentException(
                $"Launch of {e.Name}: {args.Length} argument(s) given, the kernel takes {e.Params.Length} ({string.Join(", ", e.Params.Select(p => p.Declaration))}).",
                nameof(args));
        var buf = new byte[Math.Max(e.ParamBytes, 1)];
        for (int k = 0; k < args.Length; k++)
        {
            var p = e.Params[k];
            var a = args[k];
            var span = buf.AsSpan(e.ParamOffsets[k]);
            if (p.IsArray)
            {
                if (a.Kind != KernelArgKind.Bytes)
                    throw new ArgumentException(
                        $"Launch of {e.Name}: argument {k} ({a}) does not match array parameter {k} '{p.Declaration}' (use KernelArg.Bytes with exactly {p.Bytes} bytes).",
                        nameof(args));
                // cuLaunchKernel copies exactly the declared size, so a shorter or longer buffer is a caller bug.
                if (a.Size != p.Bytes)
                    throw new ArgumentException(
                        $"Launch of {e.Name}: argument {k} has {a.Size} bytes but parameter '{p.Declaration}' takes exactly {p.Bytes} bytes.",
                        nameof(args));
                a.Data.CopyTo(span);
                continue;
            }
            var want = p.Type switch
            {
                PtxType.F32 => KernelArgKind.Float32,
                _ when p.Type.Bits() == 64 => KernelArgKind.Int64,
                _ => KernelArgKind.Int32,
            };
            if (a.Kind != want)
                throw new ArgumentException(
                    $"Launch of {e.Name}: argument {k} ({a}) does not match parameter {k} '{p.Declaration}' "
                    + $"(use KernelArg.{(want == KernelArgKind.Float32 ? "F32" : want == KernelArgKind.Int64 ? "U64/S64/Ptr" : "U32/S32")}"
                    + $"{(a.Kind == KernelArgKind.Bytes ? "; KernelArg.Bytes binds only to array parameters" : "")}).",
                    nameof(args));
            if (a.Size == 8) BinaryPrimitives.WriteUInt64LittleEndian(span, a.Bits);
            else BinaryPrimitives.WriteUInt32LittleEndian(span, (uint)a.Bits);
        }
        return buf;
    }
}
