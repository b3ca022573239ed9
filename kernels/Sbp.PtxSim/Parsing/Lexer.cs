namespace Sbp.PtxSim.Parsing;

internal enum TokenKind : byte { Ident, Number, String, Punct, End }

/// <summary>One PTX token: identifiers include dots and '%'/'$' prefixes ("ld.global.f32", "%tid.x", "$L1").</summary>
internal readonly record struct Token(TokenKind Kind, string Text, int Line)
{
    public bool Is(char c) => Kind == TokenKind.Punct && Text[0] == c;
    public bool IsIdent(string s) => Kind == TokenKind.Ident && Text == s;
    public override string ToString() => Kind == TokenKind.End ? "end of file" : $"'{Text}'";
}

/// <summary>Splits PTX text into tokens, dropping // and /* */ comments; records 1-based line numbers.</summary>
internal static class Lexer
{
    public static List<Token> Tokenize(string text, string sourceName, string[] lines)
    {
        var tokens = new List<Token>(text.Length / 4);
        int i = 0, line = 1, n = text.Length;
        while (i < n)
        {
            char ch = text[i];
            if (ch == '\n') { line++; i++; continue; }
            if (char.IsWhiteSpace(ch)) { i++; continue; }
            if (ch == '/' && i + 1 < n && text[i + 1] == '/')
            {
                while (i < n && text[i] != '\n') i++;
                continue;
            }
            if (ch == '/' && i + 1 < n && text[i + 1] == '*')
            {
                int startLine = line;
                i += 2;
                while (i < n && !(text[i] == '*' && i + 1 < n && text[i + 1] == '/'))
                {
                    if (text[i] == '\n') line++;
                    i++;
                }
                if (i >= n) throw Error("unterminated /* comment", startLine);
                i += 2;
                continue;
            }
            int start = i;
            if (IsIdentStart(ch))
            {
                i++;
                while (i < n)
                {
                    if (IsIdentPart(text[i])) i++;
                    else if (text[i] == ':' && i + 2 < n && text[i + 1] == ':' && IsIdentPart(text[i + 2])) i += 2;
                    else break;
                }
                tokens.Add(new Token(TokenKind.Ident, text[start..i], line));
                continue;
            }
            if (char.IsAsciiDigit(ch))
            {
                i++;
                while (i < n && (char.IsAsciiLetterOrDigit(text[i]) || text[i] == '.'
                                 || ((text[i] == '+' || text[i] == '-') && (text[i - 1] == 'e' || text[i - 1] == 'E') && IsDecimalFloatSoFar(text, start, i))))
                    i++;
                tokens.Add(new Token(TokenKind.Number, text[start..i], line));
                continue;
            }
            if (ch == '"')
            {
                i++;
                while (i < n && text[i] != '"' && text[i] != '\n') i++;
                if (i >= n || text[i] != '"') throw Error("unterminated string", line);
                i++;
                tokens.Add(new Token(TokenKind.String, text[start..i], line));
                continue;
            }
            if ("{}[]()<>,;:+-@!|=*".Contains(ch))
            {
                tokens.Add(new Token(TokenKind.Punct, ch.ToString(), line));
                i++;
                continue;
            }
            throw Error($"unexpected character '{ch}'", line);
        }
        tokens.Add(new Token(TokenKind.End, string.Empty, line));
        return tokens;

        PtxParseException Error(string what, int l) =>
            new($"PTX parse error: {what}.", new PtxLocation(sourceName, string.Empty, l, l - 1 < lines.Length ? lines[l - 1].Trim() : string.Empty));
    }

    private static bool IsIdentStart(char c) => char.IsAsciiLetter(c) || c == '_' || c == '$' || c == '%' || c == '.';
    private static bool IsIdentPart(char c) => char.IsAsciiLetterOrDigit(c) || c == '_' || c == '$' || c == '.';

    // "1e-5" style exponent signs belong to the number; "0f3F8E0000" / "0x1E" hex never have one.
    private static bool IsDecimalFloatSoFar(string text, int start, int i)
    {
        if (i - start >= 2 && text[start] == '0' && (text[start + 1] is 'x' or 'X' or 'f' or 'F' or 'd' or 'D' or 'b' or 'B')) return false;
        return true;
    }
}
