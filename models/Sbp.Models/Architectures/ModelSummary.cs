using System.Globalization;
using System.Text;

namespace Sbp.Models.Architectures;

/// <summary>
/// Parameter counts of a model, one row per part (patch embedding, each stage, head) and the total.
/// Rows are disjoint: together they cover every parameter exactly once.
/// </summary>
public sealed class ModelSummary(string model, IReadOnlyList<(string Part, long Parameters)> rows)
{
    public string Model { get; } = model;
    public IReadOnlyList<(string Part, long Parameters)> Rows { get; } = rows;
    public long Total => Rows.Sum(r => r.Parameters);

    /// <summary>Forward multiply-adds for <see cref="Input"/>, when counted (<see cref="VideoModel.Summary(int)"/>).</summary>
    public long? ForwardMacs { get; private init; }

    /// <summary>The input shape <see cref="ForwardMacs"/> was counted for.</summary>
    public int[]? Input { get; private init; }

    /// <summary>This summary with the forward multiply-adds of <paramref name="cost"/> for <paramref name="input"/>.</summary>
    public ModelSummary WithForward(Autograd.OpCost cost, int[] input) => new(Model, Rows) { ForwardMacs = cost.ForwardMacs, Input = input };

    /// <summary>The count of the row named <paramref name="part"/>.</summary>
    public long this[string part] => Rows.FirstOrDefault(r => r.Part == part) is { Part: not null } row
        ? row.Parameters
        : throw new KeyNotFoundException($"ModelSummary({Model}): no part named '{part}'; parts: {string.Join(", ", Rows.Select(r => r.Part))}.");

    /// <summary>Builds the rows of <paramref name="parts"/> (name, module) from each module's parameter count.</summary>
    public static ModelSummary Of(string model, params (string Part, Nn.Module? Module)[] parts) =>
        new(model, parts.Where(p => p.Module is not null).Select(p => (p.Part, p.Module!.ParameterCount())).ToList());

    public override string ToString()
    {
        var inv = CultureInfo.InvariantCulture;
        int width = Math.Max(5, Rows.Select(r => r.Part.Length).DefaultIfEmpty(0).Max());
        var sb = new StringBuilder();
        sb.AppendLine(inv, $"{Model}");
        foreach (var (part, n) in Rows) sb.AppendLine(inv, $"  {part.PadRight(width)}  {n,14:N0}");
        sb.Append(inv, $"  {"total".PadRight(width)}  {Total,14:N0}  ({Total / 1e6:F2} M)");
        if (ForwardMacs is { } macs) sb.Append(inv, $"\n  forward: {macs / 1e9:F3} G multiply-adds for input [{string.Join(", ", Input!)}]");
        return sb.ToString();
    }
}
