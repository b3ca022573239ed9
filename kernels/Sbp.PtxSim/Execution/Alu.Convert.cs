using System.Numerics;
using Sbp.PtxSim.Model;

namespace Sbp.PtxSim.Execution;

/// <summary>cvt rounding modifiers: none, float rounding (.rn .rz .rm .rp) and integer rounding (.rni .rzi .rmi .rpi).</summary>
internal enum Rounding { None, Rn, Rz, Rm, Rp, Rni, Rzi, Rmi, Rpi }

/// <summary>
/// cvt between integer types (extend / truncate, .sat clamps), float to integer (rounding required, always
/// saturating, NaN gives 0), integer to float (correctly rounded in the requested mode) and f32 to f32
/// (round to integral, .ftz, .sat). T is the destination type, T2 the source type.
/// </summary>
internal static partial class Alu
{
    private static long Extend(ulong raw, int bits, bool signed)
    {
        if (bits >= 64) return (long)raw;
        int sh = 64 - bits;
        return signed ? ((long)(raw << sh)) >> sh : (long)(raw & ((1UL << bits) - 1));
    }

    private static (Int128 Min, Int128 Max) Range(PtxType t)
    {
        int bits = t.Bits();
        return t.IsSigned()
            ? (-(Int128.One << (bits - 1)), (Int128.One << (bits - 1)) - 1)
            : (Int128.Zero, (Int128.One << bits) - 1);
    }

    public static void CvtIntInt(Machine m, Warp w, Instr i, uint exec)
    {
        var r = w.R;
        int srcBits = i.T2.Bits(), dstBits = i.T.Bits();
        bool srcSigned = i.T2.IsSigned(), dstSigned = i.T.IsSigned(), sat = i.Sat;
        var (min, max) = Range(i.T);
        for (uint k = exec; k != 0; k &= k - 1)
        {
            int l = BitOperations.TrailingZeroCount(k);
            long v = Extend(r[i.A + l], srcBits, srcSigned);
            if (sat)
            {
                Int128 x = srcSigned || srcBits < 64 ? (Int128)v : (Int128)(ulong)v;
                v = (long)(x < min ? min : x > max ? max : x);
            }
            r[i.D + l] = (ulong)Extend((ulong)v, dstBits, dstSigned) & i.DMask;
        }
    }

    public static void CvtFloatInt(Machine m, Warp w, Instr i, uint exec)
    {
        var r = w.R;
        var mode = (Rounding)i.Sub;
        var (min, max) = Range(i.T);
        double dmin = (double)min, dmax = (double)max;
        for (uint k = exec; k != 0; k &= k - 1)
        {
            int l = BitOperations.TrailingZeroCount(k);
            float x = F(r[i.A + l]);
            if (i.Ftz) x = Ftz(x);
            long v;
            if (float.IsNaN(x)) v = 0;
            else
            {
                double y = RoundIntegral(x, mode);
                if (y <= dmin) v = (long)min;
                else if (y >= dmax) v = (long)(ulong)max;   // u64 max wraps to -1 in long: the same bits
                else v = i.T.IsSigned() ? (long)y : (long)(ulong)y;
            }
            r[i.D + l] = (ulong)Extend((ulong)v, i.T.Bits(), i.T.IsSigned()) & i.DMask;
        }
    }

    public static void CvtIntFloat(Machine m, Warp w, Instr i, uint exec)
    {
        var r = w.R;
        var mode = (Rounding)i.Sub;
        int srcBits = i.T2.Bits();
        bool signed = i.T2.IsSigned();
        for (uint k = exec; k != 0; k &= k - 1)
        {
            int l = BitOperations.TrailingZeroCount(k);
            ulong raw = r[i.A + l];
            bool neg;
            ulong mag;
            if (signed)
            {
                long v = Extend(raw, srcBits, true);
                neg = v < 0;
                mag = neg ? 0UL - (ulong)v : (ulong)v;
            }
            else
            {
                neg = false;
                mag = (ulong)Extend(raw, srcBits, false);
            }
            float f = RoundToFloat(mag, neg, mode);
            if (i.Sat) f = Saturate(f);
            r[i.D + l] = Fb(f);
        }
    }

    public static void CvtFloatFloat(Machine m, Warp w, Instr i, uint exec)
    {
        var r = w.R;
        var mode = (Rounding)i.Sub;
        for (uint k = exec; k != 0; k &= k - 1)
        {
            int l = BitOperations.TrailingZeroCount(k);
            float x = F(r[i.A + l]);
            if (i.Ftz) x = Ftz(x);
            if (mode >= Rounding.Rni) x = (float)RoundIntegral(x, mode);
            if (i.Ftz) x = Ftz(x);
            if (i.Sat) x = Saturate(x);
            r[i.D + l] = Fb(x);
        }
    }

    /// <summary>cvt.rn.f16.f32: IEEE round to nearest even (subnormals kept); a NaN becomes the canonical 0x7FFF, as the hardware gives.</summary>
    public static void CvtF32ToF16(Machine m, Warp w, Instr i, uint exec)
    {
        var r = w.R;
        for (uint k = exec; k != 0; k &= k - 1)
        {
            int l = BitOperations.TrailingZeroCount(k);
            float x = F(r[i.A + l]);
            r[i.D + l] = (float.IsNaN(x) ? 0x7FFFUL : BitConverter.HalfToUInt16Bits((Half)x)) & i.DMask;
        }
    }

    /// <summary>cvt.f32.f16: exact.</summary>
    public static void CvtF16ToF32(Machine m, Warp w, Instr i, uint exec)
    {
        var r = w.R;
        for (uint k = exec; k != 0; k &= k - 1)
        {
            int l = BitOperations.TrailingZeroCount(k);
            r[i.D + l] = Fb((float)BitConverter.UInt16BitsToHalf((ushort)r[i.A + l]));
        }
    }

    /// <summary>cvt.rn.bf16.f32: round to nearest even on the bits (overflow to infinity, subnormals kept); a NaN becomes the canonical 0x7FFF.</summary>
    public static void CvtF32ToBf16(Machine m, Warp w, Instr i, uint exec)
    {
        var r = w.R;
        for (uint k = exec; k != 0; k &= k - 1)
        {
            int l = BitOperations.TrailingZeroCount(k);
            uint u = (uint)r[i.A + l];
            r[i.D + l] = (float.IsNaN(BitConverter.UInt32BitsToSingle(u)) ? 0x7FFFUL : (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16) & i.DMask;
        }
    }

    /// <summary>cvt.f32.bf16: exact (the bits shifted up).</summary>
    public static void CvtBf16ToF32(Machine m, Warp w, Instr i, uint exec)
    {
        var r = w.R;
        for (uint k = exec; k != 0; k &= k - 1)
        {
            int l = BitOperations.TrailingZeroCount(k);
            r[i.D + l] = ((r[i.A + l] & 0xFFFFUL) << 16);
        }
    }

    private static double RoundIntegral(float x, Rounding mode) => mode switch
    {
        Rounding.Rni => Math.Round((double)x, MidpointRounding.ToEven),
        Rounding.Rmi => Math.Floor((double)x),
        Rounding.Rpi => Math.Ceiling((double)x),
        _ => Math.Truncate((double)x),
    };

    /// <summary>Rounds the integer ±mag to single precision in the given mode (.rn when None).</summary>
    internal static float RoundToFloat(ulong mag, bool neg, Rounding mode)
    {
        if (mag == 0) return 0f;
        int n = 64 - BitOperations.LeadingZeroCount(mag);
        ulong mant;
        int shift = 0;
        if (n <= 24) mant = mag;
        else
        {
            shift = n - 24;
            mant = mag >> shift;
            ulong rem = mag & ((1UL << shift) - 1), half = 1UL << (shift - 1);
            bool up = mode switch
            {
                Rounding.Rz => false,
                Rounding.Rm => neg && rem != 0,
                Rounding.Rp => !neg && rem != 0,
                _ => rem > half || (rem == half && (mant & 1) != 0),
            };
            if (up && ++mant == 1UL << 24) { mant >>= 1; shift++; }
        }
        float f = MathF.ScaleB(mant, shift);
        return neg ? -f : f;
    }
}
