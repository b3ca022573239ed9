using System.Numerics;
using System.Runtime.CompilerServices;
using Sbp.PtxSim.Model;

namespace Sbp.PtxSim.Execution;

internal interface IBin<T> { static abstract T Op(T a, T b); }
internal interface IUn<T> { static abstract T Op(T a); }
internal interface ITern<T> { static abstract T Op(T a, T b, T c); }

/// <summary>
/// Lane loops shared by the arithmetic handlers. Each is generic over a struct operator, so the JIT specialises
/// one tight loop per operation; a handler runs once per warp instruction over the lanes in exec.
/// 32-bit results are stored zero-extended.
/// </summary>
internal static partial class Alu
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static float F(ulong bits) => BitConverter.UInt32BitsToSingle((uint)bits);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static ulong Fb(float f) => BitConverter.SingleToUInt32Bits(f);

    /// <summary>Flush a subnormal to a zero of the same sign.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static float Ftz(float x)
    {
        uint b = BitConverter.SingleToUInt32Bits(x);
        return (b & 0x7F800000u) == 0 ? BitConverter.UInt32BitsToSingle(b & 0x80000000u) : x;
    }

    /// <summary>Clamp to [0, 1]; NaN becomes +0.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static float Saturate(float x) => !(x > 0f) ? 0f : x > 1f ? 1f : x;

    public static void Bin32<TOp>(Machine m, Warp w, Instr i, uint exec) where TOp : IBin<uint>
    {
        var r = w.R;
        int d = i.D, a = i.A, b = i.B;
        for (uint k = exec; k != 0; k &= k - 1)
        {
            int l = BitOperations.TrailingZeroCount(k);
            r[d + l] = TOp.Op((uint)r[a + l], (uint)r[b + l]);
        }
    }

    public static void BinS32<TOp>(Machine m, Warp w, Instr i, uint exec) where TOp : IBin<int>
    {
        var r = w.R;
        int d = i.D, a = i.A, b = i.B;
        for (uint k = exec; k != 0; k &= k - 1)
        {
            int l = BitOperations.TrailingZeroCount(k);
            r[d + l] = (uint)TOp.Op((int)(uint)r[a + l], (int)(uint)r[b + l]);
        }
    }

    public static void Bin64<TOp>(Machine m, Warp w, Instr i, uint exec) where TOp : IBin<ulong>
    {
        var r = w.R;
        int d = i.D, a = i.A, b = i.B;
        for (uint k = exec; k != 0; k &= k - 1)
        {
            int l = BitOperations.TrailingZeroCount(k);
            r[d + l] = TOp.Op(r[a + l], r[b + l]);
        }
    }

    public static void BinS64<TOp>(Machine m, Warp w, Instr i, uint exec) where TOp : IBin<long>
    {
        var r = w.R;
        int d = i.D, a = i.A, b = i.B;
        for (uint k = exec; k != 0; k &= k - 1)
        {
            int l = BitOperations.TrailingZeroCount(k);
            r[d + l] = (ulong)TOp.Op((long)r[a + l], (long)r[b + l]);
        }
    }

    public static void Un32<TOp>(Machine m, Warp w, Instr i, uint exec) where TOp : IUn<uint>
    {
        var r = w.R;
        int d = i.D, a = i.A;
        for (uint k = exec; k != 0; k &= k - 1)
        {
            int l = BitOperations.TrailingZeroCount(k);
            r[d + l] = TOp.Op((uint)r[a + l]);
        }
    }

    public static void Un64<TOp>(Machine m, Warp w, Instr i, uint exec) where TOp : IUn<ulong>
    {
        var r = w.R;
        int d = i.D, a = i.A;
        for (uint k = exec; k != 0; k &= k - 1)
        {
            int l = BitOperations.TrailingZeroCount(k);
            r[d + l] = TOp.Op(r[a + l]);
        }
    }

    public static void Tern32<TOp>(Machine m, Warp w, Instr i, uint exec) where TOp : ITern<uint>
    {
        var r = w.R;
        int d = i.D, a = i.A, b = i.B, c = i.C;
        for (uint k = exec; k != 0; k &= k - 1)
        {
            int l = BitOperations.TrailingZeroCount(k);
            r[d + l] = TOp.Op((uint)r[a + l], (uint)r[b + l], (uint)r[c + l]);
        }
    }

    public static void TernS32<TOp>(Machine m, Warp w, Instr i, uint exec) where TOp : ITern<int>
    {
        var r = w.R;
        int d = i.D, a = i.A, b = i.B, c = i.C;
        for (uint k = exec; k != 0; k &= k - 1)
        {
            int l = BitOperations.TrailingZeroCount(k);
            r[d + l] = (uint)TOp.Op((int)(uint)r[a + l], (int)(uint)r[b + l], (int)(uint)r[c + l]);
        }
    }

    public static void Tern64<TOp>(Machine m, Warp w, Instr i, uint exec) where TOp : ITern<ulong>
    {
        var r = w.R;
        int d = i.D, a = i.A, b = i.B, c = i.C;
        for (uint k = exec; k != 0; k &= k - 1)
        {
            int l = BitOperations.TrailingZeroCount(k);
            r[d + l] = TOp.Op(r[a + l], r[b + l], r[c + l]);
        }
    }

    public static void TernS64<TOp>(Machine m, Warp w, Instr i, uint exec) where TOp : ITern<long>
    {
        var r = w.R;
        int d = i.D, a = i.A, b = i.B, c = i.C;
        for (uint k = exec; k != 0; k &= k - 1)
        {
            int l = BitOperations.TrailingZeroCount(k);
            r[d + l] = (ulong)TOp.Op((long)r[a + l], (long)r[b + l], (long)r[c + l]);
        }
    }

    public static void BinF32<TOp>(Machine m, Warp w, Instr i, uint exec) where TOp : IBin<float>
    {
        var r = w.R;
        int d = i.D, a = i.A, b = i.B;
        bool ftz = i.Ftz, sat = i.Sat;
        for (uint k = exec; k != 0; k &= k - 1)
        {
            int l = BitOperations.TrailingZeroCount(k);
            float x = F(r[a + l]), y = F(r[b + l]);
            if (ftz) { x = Ftz(x); y = Ftz(y); }
            float z = TOp.Op(x, y);
            if (ftz) z = Ftz(z);
            if (sat) z = Saturate(z);
            r[d + l] = Fb(z);
        }
    }

    public static void UnF32<TOp>(Machine m, Warp w, Instr i, uint exec) where TOp : IUn<float>
    {
        var r = w.R;
        int d = i.D, a = i.A;
        bool ftz = i.Ftz, sat = i.Sat;
        for (uint k = exec; k != 0; k &= k - 1)
        {
            int l = BitOperations.TrailingZeroCount(k);
            float x = F(r[a + l]);
            if (ftz) x = Ftz(x);
            float z = TOp.Op(x);
            if (ftz) z = Ftz(z);
            if (sat) z = Saturate(z);
            r[d + l] = Fb(z);
        }
    }

    public static void TernF32<TOp>(Machine m, Warp w, Instr i, uint exec) where TOp : ITern<float>
    {
        var r = w.R;
        int d = i.D, a = i.A, b = i.B, c = i.C;
        bool ftz = i.Ftz, sat = i.Sat;
        for (uint k = exec; k != 0; k &= k - 1)
        {
            int l = BitOperations.TrailingZeroCount(k);
            float x = F(r[a + l]), y = F(r[b + l]), s = F(r[c + l]);
            if (ftz) { x = Ftz(x); y = Ftz(y); s = Ftz(s); }
            float z = TOp.Op(x, y, s);
            if (ftz) z = Ftz(z);
            if (sat) z = Saturate(z);
            r[d + l] = Fb(z);
        }
    }
}
