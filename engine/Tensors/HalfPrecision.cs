using System.Runtime.Intrinsics;

namespace Sbp.Tensors;

/// <summary>
/// Conversions between float and the 16-bit float types, bit for bit as PyTorch's: to bfloat16 rounds to nearest
/// even (overflow gives infinity, subnormals kept) and every NaN becomes 0x7FC0; bfloat16 to float is exact (the
/// bits shifted up). Float16 is IEEE binary16 with round to nearest even (.NET's <see cref="Half"/>; subnormals
/// kept, NaN stays NaN). The span forms convert 8 or 16 values at a time where the CPU has the vectors.
/// </summary>
public static class HalfPrecision
{
    public static ushort ToBFloat16(float value)
    {
        if (float.IsNaN(value)) return 0x7FC0;
        uint u = BitConverter.SingleToUInt32Bits(value);
        return (ushort)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
    }

    public static float FromBFloat16(ushort bits) => BitConverter.UInt32BitsToSingle((uint)bits << 16);

    public static ushort ToFloat16(float value) => BitConverter.HalfToUInt16Bits((Half)value);

    public static float FromFloat16(ushort bits) => (float)BitConverter.UInt16BitsToHalf(bits);

    /// <summary>Floats rounded to the 16-bit <paramref name="dtype"/> (BFloat16 or Float16).</summary>
    public static void Narrow(ReadOnlySpan<float> source, Span<ushort> destination, DType dtype)
    {
        Check(source.Length, destination.Length, dtype);
        if (dtype == DType.Float16)
        {
            System.Numerics.Tensors.TensorPrimitives.ConvertToHalf(source, System.Runtime.InteropServices.MemoryMarshal.Cast<ushort, Half>(destination));
            return;
        }
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var u = System.Runtime.InteropServices.MemoryMarshal.Cast<float, uint>(source);
            var bias = Vector256.Create(0x7FFFu);
            var one = Vector256.Create(1u);
            var nan = Vector256.Create(0x7FC00000u);
            for (; i + 16 <= source.Length; i += 16)
            {
                var a = Round(Vector256.Create(u.Slice(i, 8)), bias, one, nan);
                var b = Round(Vector256.Create(u.Slice(i + 8, 8)), bias, one, nan);
                Vector256.Narrow(a, b).CopyTo(destination.Slice(i, 16));
            }
        }
        for (; i < source.Length; i++) destination[i] = ToBFloat16(source[i]);
    }

    /// <summary>16-bit values of <paramref name="dtype"/> widened to floats (exact).</summary>
    public static void Widen(ReadOnlySpan<ushort> source, Span<float> destination, DType dtype)
    {
        Check(source.Length, destination.Length, dtype);
        if (dtype == DType.Float16)
        {
            System.Numerics.Tensors.TensorPrimitives.ConvertToSingle(System.Runtime.InteropServices.MemoryMarshal.Cast<ushort, Half>(source), destination);
            return;
        }
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var d = System.Runtime.InteropServices.MemoryMarshal.Cast<float, uint>(destination);
            for (; i + 16 <= source.Length; i += 16)
            {
                var (lo, hi) = Vector256.Widen(Vector256.Create(source.Slice(i, 16)));
                (lo << 16).CopyTo(d.Slice(i, 8));
                (hi << 16).CopyTo(d.Slice(i + 8, 8));
            }
        }
        for (; i < source.Length; i++) destination[i] = FromBFloat16(source[i]);
    }

    /// <summary>
    /// Floats rounded to the 16-bit <paramref name="dtype"/> and widened back (exact: a Float32 holds every 16-bit value), in
    /// place or not. bfloat16 rounds in the Float32 bits, 8 lanes at a time (the GEMM rounds autocast's weights this way as it
    /// packs them, so it must cost no more than a widening).
    /// </summary>
    public static void Round(ReadOnlySpan<float> source, Span<float> destination, DType dtype)
    {
        Check(source.Length, destination.Length, dtype);
        int i = 0;
        if (dtype == DType.BFloat16)
        {
            if (Vector256.IsHardwareAccelerated)
            {
                var u = System.Runtime.InteropServices.MemoryMarshal.Cast<float, uint>(source);
                var d = System.Runtime.InteropServices.MemoryMarshal.Cast<float, uint>(destination);
                var bias = Vector256.Create(0x7FFFu);
                var one = Vector256.Create(1u);
                var nan = Vector256.Create(0x7FC00000u);
                for (; i + 8 <= source.Length; i += 8)
                    (Round(Vector256.Create(u.Slice(i, 8)), bias, one, nan) << 16).CopyTo(d.Slice(i, 8));
            }
            for (; i < source.Length; i++) destination[i] = FromBFloat16(ToBFloat16(source[i]));
            return;
        }
        Span<ushort> chunk = stackalloc ushort[256];
        for (; i < source.Length; i += chunk.Length)
        {
            int n = Math.Min(chunk.Length, source.Length - i);
            Narrow(source.Slice(i, n), chunk[..n], dtype);
            Widen(chunk[..n], destination.Slice(i, n), dtype);
        }
    }

    /// <summary>(u + 0x7FFF + bit 16 of u) >> 16, and 0x7FC0 for NaN: the scalar rule on 8 lanes (upper halves kept in the low 16 bits).</summary>
    static Vector256<uint> Round(Vector256<uint> u, Vector256<uint> bias, Vector256<uint> one, Vector256<uint> nan)
    {
        var x = u.AsSingle();
        var rounded = u + bias + ((u >> 16) & one);
        return Vector256.ConditionalSelect(Vector256.Equals(x, x).AsUInt32(), rounded, nan) >> 16;
    }

    static void Check(int source, int destination, DType dtype)
    {
        if (!dtype.Is16Bit()) throw new ArgumentException($"HalfPrecision: {dtype} is not a 16-bit float type (BFloat16 or Float16).", nameof(dtype));
        if (destination < source) throw new ArgumentException($"HalfPrecision: the destination holds {destination} values, the source has {source}.");
    }
}
