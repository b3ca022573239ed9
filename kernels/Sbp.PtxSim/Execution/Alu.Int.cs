using System.Numerics;
using Sbp.PtxSim.Model;

namespace Sbp.PtxSim.Execution;

/// <summary>
/// Integer operators. Everything wraps like the hardware; shifts clamp the amount (>= width gives 0, or the sign
/// for arithmetic right shifts); division by zero gives all ones (quotient) and the dividend (remainder), and
/// MIN / -1 wraps to MIN, instead of trapping.
/// </summary>
internal static partial class Alu
{
    public struct Add32 : IBin<uint> { public static uint Op(uint a, uint b) => a + b; }
    public struct Sub32 : IBin<uint> { public static uint Op(uint a, uint b) => a - b; }
    public struct MulLo32 : IBin<uint> { public static uint Op(uint a, uint b) => a * b; }
    public struct MulHiU32 : IBin<uint> { public static uint Op(uint a, uint b) => (uint)(((ulong)a * b) >> 32); }
    public struct MulHiS32 : IBin<int> { public static int Op(int a, int b) => (int)(((long)a * b) >> 32); }
    public struct AddSatS32 : IBin<int> { public static int Op(int a, int b) => (int)Math.Clamp((long)a + b, int.MinValue, int.MaxValue); }
    public struct SubSatS32 : IBin<int> { public static int Op(int a, int b) => (int)Math.Clamp((long)a - b, int.MinValue, int.MaxValue); }
    // Width-generic operators (instantiated with uint/int or ulong/long; specialised by the JIT per type).
    public struct DivU<T> : IBin<T> where T : IBinaryInteger<T>, IMinMaxValue<T> { public static T Op(T a, T b) => b == T.Zero ? T.MaxValue : a / b; }
    public struct DivS<T> : IBin<T> where T : IBinaryInteger<T>, ISignedNumber<T> { public static T Op(T a, T b) => b == T.Zero ? T.NegativeOne : b == T.NegativeOne ? unchecked(-a) : a / b; }
    public struct RemU<T> : IBin<T> where T : IBinaryInteger<T> { public static T Op(T a, T b) => b == T.Zero ? a : a % b; }
    public struct RemS<T> : IBin<T> where T : IBinaryInteger<T>, ISignedNumber<T> { public static T Op(T a, T b) => b == T.Zero ? a : b == T.NegativeOne ? T.Zero : a % b; }
    public struct Min<T> : IBin<T> where T : IBinaryInteger<T> { public static T Op(T a, T b) => T.Min(a, b); }
    public struct Max<T> : IBin<T> where T : IBinaryInteger<T> { public static T Op(T a, T b) => T.Max(a, b); }
    public struct And<T> : IBin<T> where T : IBinaryInteger<T> { public static T Op(T a, T b) => a & b; }
    public struct Or<T> : IBin<T> where T : IBinaryInteger<T> { public static T Op(T a, T b) => a | b; }
    public struct Xor<T> : IBin<T> where T : IBinaryInteger<T> { public static T Op(T a, T b) => a ^ b; }
    public struct Shl32 : IBin<uint> { public static uint Op(uint a, uint b) => b >= 32 ? 0 : a << (int)b; }
    public struct ShrU32 : IBin<uint> { public static uint Op(uint a, uint b) => b >= 32 ? 0 : a >> (int)b; }
    public struct ShrS32 : IBin<uint> { public static uint Op(uint a, uint b) => (uint)((int)a >> (int)Math.Min(b, 31u)); }
    public struct Neg32 : IUn<uint> { public static uint Op(uint a) => 0u - a; }
    public struct Not32 : IUn<uint> { public static uint Op(uint a) => ~a; }
    public struct AbsS32 : IUn<uint> { public static uint Op(uint a) => (int)a < 0 ? 0u - a : a; }
    public struct Popc32 : IUn<uint> { public static uint Op(uint a) => (uint)BitOperations.PopCount(a); }
    public struct Clz32 : IUn<uint> { public static uint Op(uint a) => (uint)BitOperations.LeadingZeroCount(a); }
    public struct Brev32 : IUn<uint> { public static uint Op(uint a) => ReverseBits(a); }
    public struct MadLo32 : ITern<uint> { public static uint Op(uint a, uint b, uint c) => a * b + c; }
    public struct MadHiU32 : ITern<uint> { public static uint Op(uint a, uint b, uint c) => (uint)(((ulong)a * b) >> 32) + c; }
    public struct MadHiS32 : ITern<int> { public static int Op(int a, int b, int c) => unchecked((int)(((long)a * b) >> 32) + c); }

    public struct Add64 : IBin<ulong> { public static ulong Op(ulong a, ulong b) => a + b; }
    public struct Sub64 : IBin<ulong> { public static ulong Op(ulong a, ulong b) => a - b; }
    public struct MulLo64 : IBin<ulong> { public static ulong Op(ulong a, ulong b) => a * b; }
    public struct MulHiU64 : IBin<ulong> { public static ulong Op(ulong a, ulong b) => Math.BigMul(a, b, out _); }
    public struct MulHiS64 : IBin<long> { public static long Op(long a, long b) => Math.BigMul(a, b, out _); }
    // The shift amount is a .u32 operand (its register keeps the upper half zero).
    public struct Shl64 : IBin<ulong> { public static ulong Op(ulong a, ulong b) => (uint)b >= 64 ? 0 : a << (int)(uint)b; }
    public struct ShrU64 : IBin<ulong> { public static ulong Op(ulong a, ulong b) => (uint)b >= 64 ? 0 : a >> (int)(uint)b; }
    public struct ShrS64 : IBin<ulong> { public static ulong Op(ulong a, ulong b) => (ulong)((long)a >> (int)Math.Min((uint)b, 63u)); }
    public struct Neg64 : IUn<ulong> { public static ulong Op(ulong a) => 0UL - a; }
    public struct Not64 : IUn<ulong> { public static ulong Op(ulong a) => ~a; }
    public struct AbsS64 : IUn<ulong> { public static ulong Op(ulong a) => (long)a < 0 ? 0UL - a : a; }
    public struct Popc64 : IUn<ulong> { public static ulong Op(ulong a) => (ulong)BitOperations.PopCount(a); }
    public struct Clz64 : IUn<ulong> { public static ulong Op(ulong a) => (ulong)BitOperations.LeadingZeroCount(a); }
    public struct Brev64 : IUn<ulong> { public static ulong Op(ulong a) => ((ulong)ReverseBits((uint)a) << 32) | ReverseBits((uint)(a >> 32)); }
    public struct MadLo64 : ITern<ulong> { public static ulong Op(ulong a, ulong b, ulong c) => a * b + c; }
    public struct MadHiU64 : ITern<ulong> { public static ulong Op(ulong a, ulong b, ulong c) => Math.BigMul(a, b, out _) + c; }
    public struct MadHiS64 : ITern<long> { public static long Op(long a, long b, long c) => unchecked(Math.BigMul(a, b, out _) + c); }

    public struct NotPred : IUn<ulong> { public static ulong Op(ulong a) => a ^ 1; }

    private static uint ReverseBits(uint v)
    {
        v = ((v >> 1) & 0x55555555u) | ((v & 0x55555555u) << 1);
        v = ((v >> 2) & 0x33333333u) | ((v & 0x33333333u) << 2);
        v = ((v >> 4) & 0x0F0F0F0Fu) | ((v & 0x0F0F0F0Fu) << 4);
        v = ((v >> 8) & 0x00FF00FFu) | ((v & 0x00FF00FFu) << 8);
        return (v >> 16) | (v << 16);
    }

    /// <summary>mul.wide.u32: 32 x 32 -> 64.</summary>
    public static void MulWideU32(Machine m, Warp w, Instr i, uint exec)
    {
        var r = w.R;
        int d = i.D, a = i.A, b = i.B, c = i.C;
        for (uint k = exec; k != 0; k &= k - 1)
        {
            int l = BitOperations.TrailingZeroCount(k);
            ulong p = (ulong)(uint)r[a + l] * (uint)r[b + l];
            r[d + l] = c >= 0 ? p + r[c + l] : p;
        }
    }

    /// <summary>mul.wide.s32 (and mad.wide.s32 when C is set): sign-extended 32 x 32 -> 64.</summary>
    public static void MulWideS32(Machine m, Warp w, Instr i, uint exec)
    {
        var r = w.R;
        int d = i.D, a = i.A, b = i.B, c = i.C;
        for (uint k = exec; k != 0; k &= k - 1)
        {
            int l = BitOperations.TrailingZeroCount(k);
            long p = (long)(int)(uint)r[a + l] * (int)(uint)r[b + l];
            r[d + l] = c >= 0 ? (ulong)p + r[c + l] : (ulong)p;
        }
    }

    /// <summary>Register (or immediate) copy: mov, cvta.to.global.</summary>
    public static void Mov(Machine m, Warp w, Instr i, uint exec)
    {
        var r = w.R;
        int d = i.D, a = i.A;
        ulong mask = i.DMask;
        for (uint k = exec; k != 0; k &= k - 1)
        {
            int l = BitOperations.TrailingZeroCount(k);
            r[d + l] = r[a + l] & mask;
        }
    }

    /// <summary>mov.bN d, {a, b, ...}: pack equal-width elements, element 0 lowest.</summary>
    public static void MovPack(Machine m, Warp w, Instr i, uint exec)
    {
        var r = w.R;
        int bits = i.Size * 8;
        ulong em = PtxTypes.Mask(bits);
        for (uint k = exec; k != 0; k &= k - 1)
        {
            int l = BitOperations.TrailingZeroCount(k);
            ulong v = 0;
            for (int e = 0; e < i.AV.Length; e++) v |= (r[i.AV[e] + l] & em) << (e * bits);
            r[i.D + l] = v;
        }
    }

    /// <summary>mov.bN {a, b, ...}, d: unpack into equal-width elements, element 0 lowest.</summary>
    public static void MovUnpack(Machine m, Warp w, Instr i, uint exec)
    {
        var r = w.R;
        int bits = i.Size * 8;
        ulong em = PtxTypes.Mask(bits);
        for (uint k = exec; k != 0; k &= k - 1)
        {
            int l = BitOperations.TrailingZeroCount(k);
            ulong v = r[i.A + l];
            for (int e = 0; e < i.DV.Length; e++)
                if (i.DV[e] >= 0) r[i.DV[e] + l] = (v >> (e * bits)) & em;
        }
    }

    /// <summary>Instructions with no effect in a sequential simulation (membar, fence).</summary>
    public static void Nop(Machine m, Warp w, Instr i, uint exec) { }
}
