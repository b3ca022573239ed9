namespace Sbp.PtxSim;

/// <summary>The PTX class of a kernel argument: what .param types it may be bound to.</summary>
public enum KernelArgKind
{
    /// <summary>A 32-bit integer (.u32, .s32, .b32 params).</summary>
    Int32,
    /// <summary>A 64-bit integer or a device pointer (.u64, .s64, .b64 params).</summary>
    Int64,
    /// <summary>A 32-bit float (.f32 params).</summary>
    Float32,
    /// <summary>Raw bytes for an array param such as `.param .align 4 .b8 meta[256]` (a struct passed by value).</summary>
    Bytes,
}

/// <summary>One .param value of a launch, by PTX type.</summary>
public readonly struct KernelArg
{
    private readonly byte[]? _bytes;

    private KernelArg(KernelArgKind kind, ulong bits, byte[]? bytes = null)
    {
        Kind = kind;
        Bits = bits;
        _bytes = bytes;
    }

    /// <summary>Which .param types this value may be bound to.</summary>
    public KernelArgKind Kind { get; }

    /// <summary>The raw little-endian bits (4 or 8 bytes used); 0 for <see cref="KernelArgKind.Bytes"/>.</summary>
    public ulong Bits { get; }

    /// <summary>The bytes of a <see cref="KernelArgKind.Bytes"/> argument; empty for the scalar kinds.</summary>
    public ReadOnlySpan<byte> Data => _bytes;

    /// <summary>Size in bytes (4 or 8; the byte count for <see cref="KernelArgKind.Bytes"/>).</summary>
    public int Size => Kind switch
    {
        KernelArgKind.Bytes => _bytes?.Length ?? 0,
        KernelArgKind.Int64 => 8,
        _ => 4,
    };

    public static KernelArg U64(ulong v) => new(KernelArgKind.Int64, v);
    public static KernelArg Ptr(ulong address) => new(KernelArgKind.Int64, address);
    public static KernelArg S64(long v) => new(KernelArgKind.Int64, unchecked((ulong)v));
    public static KernelArg U32(uint v) => new(KernelArgKind.Int32, v);
    public static KernelArg S32(int v) => new(KernelArgKind.Int32, unchecked((uint)v));
    public static KernelArg F32(float v) => new(KernelArgKind.Float32, BitConverter.SingleToUInt32Bits(v));

    /// <summary>A copy of <paramref name="bytes"/> for an array param; its length must equal the param's declared size.</summary>
    public static KernelArg Bytes(ReadOnlySpan<byte> bytes) => new(KernelArgKind.Bytes, 0, bytes.ToArray());

    /// <inheritdoc cref="Bytes(ReadOnlySpan{byte})"/>
    public static KernelArg Bytes(byte[] bytes)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        return Bytes(bytes.AsSpan());
    }

    /// <summary>e.g. "f32 1.5", "32-bit 0x7" or "bytes[256]".</summary>
    public override string ToString() => Kind switch
    {
        KernelArgKind.Float32 => $"f32 {BitConverter.UInt32BitsToSingle((uint)Bits)}",
        KernelArgKind.Int32 => $"32-bit 0x{Bits:X}",
        KernelArgKind.Bytes => $"bytes[{Size}]",
        _ => $"64-bit 0x{Bits:X}",
    };
}
