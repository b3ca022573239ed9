using System.Text;

namespace Sbp.Models.Data;

/// <summary>
/// The lines of a list or annotation file, decoded as strict UTF-8: a line holding bytes that are not
/// UTF-8 (a file name from another encoding) is a bad line whose text shows those bytes escaped as
/// \xNN, never as replacement characters that name no file.
/// </summary>
public static class TextLines
{
    static readonly UTF8Encoding Strict = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>(line number, text or null when not UTF-8, the line as shown in messages).</summary>
    public static IEnumerable<(int Line, string? Text, string Shown)> Read(string path)
    {
        var bytes = File.ReadAllBytes(path);
        int start = bytes.Length >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF ? 3 : 0;   // a byte-order mark
        int lineNo = 0;
        while (start < bytes.Length)
        {
            // Line ends as a StreamReader sees them: \n, \r\n or a lone \r.
            int end = bytes.AsSpan(start).IndexOfAny((byte)'\n', (byte)'\r');
            end = end < 0 ? bytes.Length : start + end;
            var span = bytes.AsSpan(start, end - start);
            lineNo++;
            string? text;
            try { text = Strict.GetString(span); }
            catch (DecoderFallbackException) { text = null; }
            yield return (lineNo, text, text ?? Escaped(span));
            start = end + (end + 1 < bytes.Length && bytes[end] == '\r' && bytes[end + 1] == '\n' ? 2 : 1);
        }
    }

    /// <summary>True for a line that holds nothing (white space) or a '#' comment, whatever its encoding.</summary>
    public static bool IsBlankOrComment(string shown)
    {
        var t = shown.Trim();
        return t.Length == 0 || t.StartsWith('#');
    }

    /// <summary>The bytes as text with every byte outside valid UTF-8 sequences written \xNN.</summary>
    public static string Escaped(ReadOnlySpan<byte> bytes)
    {
        var sb = new StringBuilder();
        int i = 0;
        while (i < bytes.Length)
        {
            int n = SequenceLength(bytes[i..]);
            if (n > 0)
            {
                sb.Append(Encoding.UTF8.GetString(bytes.Slice(i, n)));
                i += n;
            }
            else sb.Append($"\\x{bytes[i++]:x2}");
        }
        return sb.ToString();
    }

    /// <summary>The length of the valid UTF-8 sequence at the start of <paramref name="b"/>, or 0.</summary>
    static int SequenceLength(ReadOnlySpan<byte> b)
    {
        for (int n = 1; n <= Math.Min(4, b.Length); n++)
        {
            try
            {
                Strict.GetString(b[..n]);
                return n;
            }
            catch (DecoderFallbackException) { }
        }
        return 0;
    }
}
