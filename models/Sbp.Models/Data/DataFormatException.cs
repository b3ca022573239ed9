namespace Sbp.Models.Data;

/// <summary>A bad line in a list or annotation file; the message starts with "file:line:".</summary>
public sealed class DataFormatException(string file, int line, string problem)
    : FormatException($"{file}:{line}: {problem}")
{
    public string File { get; } = file;
    public int Line { get; } = line;
    public string Problem { get; } = problem;
}

/// <summary>What a parser does with a bad line: skip it (and report it), or fail on the first one.</summary>
public enum BadLinePolicy
{
    Skip,
    Fail,
}

/// <summary>What a loader does with a video it cannot read: warn, count and replace it, or fail.</summary>
public enum CorruptVideoPolicy
{
    Skip,
    Fail,
}
