namespace Sbp.Distributed;

/// <summary>Ranks that should train the same model with the same settings do not: every difference found, by rank.</summary>
public sealed class DistributedMismatchException(string what, IReadOnlyList<string> problems)
    : Exception($"{what}: the ranks do not agree: {string.Join("; ", problems)}. Start every rank with the same command line and files.")
{
    public IReadOnlyList<string> Problems { get; } = problems;
}
