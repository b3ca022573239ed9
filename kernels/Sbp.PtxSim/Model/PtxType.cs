namespace Sbp.PtxSim.Model;

/// <summary>PTX fundamental types (f64 is recognised only to be refused; f16 and bf16 only in cvt to and from f32).</summary>
internal enum PtxType : byte { None, Pred, B8, B16, B32, B64, U8, U16, U32, U64, S8, S16, S32, S64, F16, F32, F64, BF16 }

internal static class PtxTypes
{
    public static PtxType Parse(string s) => s switch
    {
        "pred" => PtxType.Pred,
        "b8" => PtxType.B8, "b16" => PtxType.B16, "b32" => PtxType.B32, "b64" => PtxType.B64,
        "u8" => PtxType.U8, "u16" => PtxType.U16, "u32" => PtxType.U32, "u64" => PtxType.U64,
        "s8" => PtxType.S8, "s16" => PtxType.S16, "s32" => PtxType.S32, "s64" => PtxType.S64,
        "f16" => PtxType.F16, "f32" => PtxType.F32, "f64" => PtxType.F64, "bf16" => PtxType.BF16,
        _ => PtxType.None,
    };

    public static int Bits(this PtxType t) => t switch
    {
        PtxType.Pred => 1,
        PtxType.B8 or PtxType.U8 or PtxType.S8 => 8,
        PtxType.B16 or PtxType.U16 or PtxType.S16 or PtxType.F16 or PtxType.BF16 => 16,
        PtxType.B32 or PtxType.U32 or PtxType.S32 or PtxType.F32 => 32,
        PtxType.B64 or PtxType.U64 or PtxType.S64 or PtxType.F64 => 64,
        _ => 0,
    };

    public static int Bytes(this PtxType t) => Math.Max(1, t.Bits() / 8);
    public static bool IsSigned(this PtxType t) => t is PtxType.S8 or PtxType.S16 or PtxType.S32 or PtxType.S64;
    public static bool IsFloat(this PtxType t) => t is PtxType.F16 or PtxType.F32 or PtxType.F64 or PtxType.BF16;
    public static bool IsInt(this PtxType t) => t is >= PtxType.B8 and <= PtxType.S64;
    public static string Name(this PtxType t) => t == PtxType.None ? "?" : t.ToString().ToLowerInvariant();

    /// <summary>Mask of the low <paramref name="bits"/> bits (all ones for 64).</summary>
    public static ulong Mask(int bits) => bits >= 64 ? ulong.MaxValue : (1UL << bits) - 1;
}
