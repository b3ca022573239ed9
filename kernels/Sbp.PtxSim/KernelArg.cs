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
}

/// <summary>One .param value of a launch, by PTX type.</summary>
public readonly struct KernelArg
{
    private KernelArg(KernelArgKind kind, ulong bits)
    {
        Kind = kind;
        Bits = bits;
    }

    /// <summary>Which .param types this value may be bound to.</summary>
    public KernelArgKind Kind { get; }

    /// <summary>The raw little-endian bits (4 or 8 bytes used).</summary>
    public ulong Bits { get; }

    /// <summary>Size in bytes (4 or 8).</summary>
    public int Size => Kind == KernelArgKind.Int64 ? 8 : 4;

    public static KernelArg U64(ulong v) => new(KernelArgKind.Int64, v);
    public static KernelArg Ptr(ulong address) => new(KernelArgKind.Int64, address);
    public static KernelArg S64(long v) => new(KernelArgKind.Int64, unchecked((ulong)v));
    public static KernelArg U32(uint v) => new(KernelArgKind.Int32, v);
    public static KernelArg S32(int v) => new(KernelArgKind.Int32, unchecked((uint)v));
    public static KernelArg F32(float v) => new(KernelArgKind.Float32, BitConverter.SingleToUInt32Bits(v));

    /// <summary>e.g. "f32 1.5" or "32-bit 0x7".</summary>
    public override string ToString() => Kind switch
    {
        KernelArgKind.Float32 => $"f32 {BitConverter.UInt32BitsToSingle((uint)Bits)}",
        KernelArgKind.Int32 => $"32-bit 0x{Bits:X}",
        _ => $"64-bit 0x{Bits:X}",
    };
}
