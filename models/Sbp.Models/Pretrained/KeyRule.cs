namespace Sbp.Models.Pretrained;

/// <summary>
/// One of our state-dict entries (<see cref="Ours"/>) and the official entries it is made of, concatenated along
/// axis 0 in order; a null part stands for zeros the official model does not have (VideoMAE's k bias), sized so
/// the parts fill our entry.
/// </summary>
public sealed record KeyRule(string Ours, IReadOnlyList<string?> Official)
{
    public override string ToString() => Official.Count == 1 ? $"{Official[0]} -> {Ours}" : $"[{string.Join(", ", Official.Select(o => o ?? "zeros"))}] -> {Ours}";
}
