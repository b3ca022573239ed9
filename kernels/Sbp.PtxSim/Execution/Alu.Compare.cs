using System.Numerics;
using Sbp.PtxSim.Model;

namespace Sbp.PtxSim.Execution;

/// <summary>setp comparison operators (PTX names). For floats eq..ge are ordered (false on NaN), equ..geu unordered.</summary>
internal enum Cmp { Eq, Ne, Lt, Le, Gt, Ge, Lo, Ls, Hi, Hs, Equ, Neu, Ltu, Leu, Gtu, Geu, Num, Nan }

/// <summary>setp's optional combining operator with a third predicate.</summary>
internal enum BoolOp { None, And, Or, Xor }

/// <summary>setp and selp.</summary>
internal static partial class Alu
{
    public static bool TryParseCmp(string s, out Cmp c) => Enum.TryParse(s, ignoreCase: true, out c) && !char.IsDigit(s[0]);

    private static bool CmpSigned(long a, long b, Cmp c) => c switch
    {
        Cmp.Eq => a == b, Cmp.Ne => a != b, Cmp.Lt => a < b, Cmp.Le => a <= b, Cmp.Gt => a > b, Cmp.Ge => a >= b,
        _ => CmpUnsigned((ulong)a, (ulong)b, c),
    };

    private static bool CmpUnsigned(ulong a, ulong b, Cmp c) => c switch
    {
        Cmp.Eq => a == b, Cmp.Ne => a != b,
        Cmp.Lt or Cmp.Lo => a < b, Cmp.Le or Cmp.Ls => a <= b, Cmp.Gt or Cmp.Hi => a > b, Cmp.Ge or Cmp.Hs => a >= b,
        _ => false,
    };

    private static bool CmpFloat(float a, float b, Cmp c)
    {
        bool nan = float.IsNaN(a) || float.IsNaN(b);
        return c switch
        {
            Cmp.Eq => a == b, Cmp.Ne => !nan && a != b, Cmp.Lt => a < b, Cmp.Le => a <= b, Cmp.Gt => a > b, Cmp.Ge => a >= b,
            Cmp.Equ => nan || a == b, Cmp.Neu => nan || a != b, Cmp.Ltu => nan || a < b, Cmp.Leu => nan || a <= b,
            Cmp.Gtu => nan || a > b, Cmp.Geu => nan || a >= b, Cmp.Num => !nan, Cmp.Nan => nan,
            _ => false,
        };
    }

    private static void WriteSetp(ulong[] r, Instr i, int l, bool t)
    {
        if (i.Sub2 != (int)BoolOp.None)
        {
            bool c = (r[i.C + l] != 0) ^ i.NotC;
            bool p = Combine(t, c, (BoolOp)i.Sub2), q = Combine(!t, c, (BoolOp)i.Sub2);
            r[i.D + l] = p ? 1UL : 0UL;
            if (i.D2 >= 0) r[i.D2 + l] = q ? 1UL : 0UL;
            return;
        }
        r[i.D + l] = t ? 1UL : 0UL;
        if (i.D2 >= 0) r[i.D2 + l] = t ? 0UL : 1UL;
    }

    private static bool Combine(bool a, bool b, BoolOp op) => op switch
    {
        BoolOp.And => a && b, BoolOp.Or => a || b, BoolOp.Xor => a ^ b, _ => a,
    };

    /// <summary>An integer setp flavour: how the two raw register values are compared.</summary>
    private interface ISetpInt { static abstract bool Compare(ulong a, ulong b, Cmp c); }
    private struct SetpS32Cmp : ISetpInt { public static bool Compare(ulong a, ulong b, Cmp c) => CmpSigned((int)(uint)a, (int)(uint)b, c); }
    private struct SetpU32Cmp : ISetpInt { public static bool Compare(ulong a, ulong b, Cmp c) => CmpUnsigned((uint)a, (uint)b, c); }
    private struct SetpS64Cmp : ISetpInt { public static bool Compare(ulong a, ulong b, Cmp c) => CmpSigned((long)a, (long)b, c); }
    private struct SetpU64Cmp : ISetpInt { public static bool Compare(ulong a, ulong b, Cmp c) => CmpUnsigned(a, b, c); }

    /// <summary>The lane loop shared by the integer setp flavours (specialised per struct, so no dispatch per lane).</summary>
    private static void SetpInt<TCmp>(Warp w, Instr i, uint exec) where TCmp : struct, ISetpInt
    {
        var r = w.R;
        var c = (Cmp)i.Sub;
        for (uint k = exec; k != 0; k &= k - 1)
        {
            int l = BitOperations.TrailingZeroCount(k);
            WriteSetp(r, i, l, TCmp.Compare(r[i.A + l], r[i.B + l], c));
        }
    }

    public static void SetpS32(Machine m, Warp w, Instr i, uint exec) => SetpInt<SetpS32Cmp>(w, i, exec);
    public static void SetpU32(Machine m, Warp w, Instr i, uint exec) => SetpInt<SetpU32Cmp>(w, i, exec);
    public static void SetpS64(Machine m, Warp w, Instr i, uint exec) => SetpInt<SetpS64Cmp>(w, i, exec);
    public static void SetpU64(Machine m, Warp w, Instr i, uint exec) => SetpInt<SetpU64Cmp>(w, i, exec);

    public static void SetpF32(Machine m, Warp w, Instr i, uint exec)
    {
        var r = w.R;
        var c = (Cmp)i.Sub;
        bool ftz = i.Ftz;
        for (uint k = exec; k != 0; k &= k - 1)
        {
            int l = BitOperations.TrailingZeroCount(k);
            float a = F(r[i.A + l]), b = F(r[i.B + l]);
            if (ftz) { a = Ftz(a); b = Ftz(b); }
            WriteSetp(r, i, l, CmpFloat(a, b, c));
        }
    }

    /// <summary>selp d, a, b, c: d = c ? a : b.</summary>
    public static void Selp(Machine m, Warp w, Instr i, uint exec)
    {
        var r = w.R;
        int d = i.D, a = i.A, b = i.B, c = i.C;
        bool not = i.NotC;
        for (uint k = exec; k != 0; k &= k - 1)
        {
            int l = BitOperations.TrailingZeroCount(k);
            r[d + l] = (r[c + l] != 0) ^ not ? r[a + l] : r[b + l];
        }
    }
}
