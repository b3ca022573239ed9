using System.Globalization;

namespace Sbp.PtxSim.Parsing;

/// <summary>PTX numeric literals: integers (decimal, 0x hex, 0b binary, leading-0 octal, optional U suffix) and
/// floats (0fXXXXXXXX single bits, 0dXXXXXXXXXXXXXXXX double bits, decimal with '.' or an exponent).</summary>
internal static class Literals
{
    public static bool IsFloatLiteral(string s) =>
        (s.Length == 10 && s[0] == '0' && s[1] is 'f' or 'F') || (s.Length == 18 && s[0] == '0' && s[1] is 'd' or 'D')
        || (!s.StartsWith("0x", StringComparison.OrdinalIgnoreCase) && (s.Contains('.') || s.Contains('e') || s.Contains('E')));

    public static bool TryParseInteger(string s, out long value)
    {
        value = 0;
        if (s.EndsWith('U') || s.EndsWith('u')) s = s[..^1];
        if (s.Length == 0) return false;
        ulong v;
        bool ok;
        if (s.StartsWith("0x", StringComparison.OrdinalIgnoreCase))
            ok = ulong.TryParse(s.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out v) && s.Length > 2;
        else if (s.StartsWith("0b", StringComparison.OrdinalIgnoreCase))
        {
            v = 0;
            ok = s.Length > 2;
            foreach (char c in s.AsSpan(2))
            {
                if (c is not ('0' or '1') || v >> 63 != 0) { ok = false; break; }
                v = (v << 1) | (uint)(c - '0');
            }
        }
        else if (s.Length > 1 && s[0] == '0')
        {
            v = 0;
            ok = true;
            foreach (char c in s.AsSpan(1))
            {
                if (c is < '0' or > '7' || v >> 61 != 0) { ok = false; break; }
                v = (v << 3) | (uint)(c - '0');
            }
        }
        else ok = ulong.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out v);
        value = unchecked((long)v);
        return ok;
    }

    /// <summary>A float literal as a double (0f literals are widened exactly).</summary>
    public static bool TryParseFloat(string s, out double value, out bool isSingleBits, out uint singleBits)
    {
        isSingleBits = false;
        singleBits = 0;
        value = 0;
        if (s.Length == 10 && s[0] == '0' && s[1] is 'f' or 'F')
        {
            if (!uint.TryParse(s.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out singleBits)) return false;
            isSingleBits = true;
            value = BitConverter.UInt32BitsToSingle(singleBits);
            return true;
        }
        if (s.Length == 18 && s[0] == '0' && s[1] is 'd' or 'D')
        {
            if (!ulong.TryParse(s.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out ulong bits)) return false;
            value = BitConverter.UInt64BitsToDouble(bits);
            return true;
        }
        return double.TryParse(s, NumberStyles.AllowDecimalPoint | NumberStyles.AllowExponent, CultureInfo.InvariantCulture, out value);
    }
}
