using System.Globalization;

namespace Sbp.Models.Training;

/// <summary>
/// A backprop mode and keep ratio, written one way everywhere: `compare --modes full,sbp:0.5`,
/// `train --mode sbp --keep 0.5`, run labels (<see cref="TrainConfig.Label"/>, "sbp-0.5") and the
/// benchmarks' mode names. Forms: <c>full</c>, <c>checkpoint</c>, <c>sbp:KEEP</c>,
/// <c>sbp+checkpoint:KEEP</c>, with KEEP a number in (0, 1] ("0.25") or a fraction ("1/4"); "-" may
/// stand for ":" so that labels read back. A precision may lead, as <c>bf16/sbp:0.5</c> (label
/// "bf16-sbp-0.5"): fp32, bf16 or fp16 (<see cref="Precision"/>). Every malformed value is an error that names it.
/// </summary>
public readonly record struct ModeSpec(TrainMode Mode, double Keep, Sbp.Tensors.DType? Precision = null)
{
    /// <summary>The accepted forms, for error messages and help.</summary>
    public const string Forms = "full, checkpoint, sbp:KEEP or sbp+checkpoint:KEEP, with KEEP in (0, 1] (e.g. sbp:0.5 or sbp:1/4), " +
        "each optionally led by a precision fp32/, bf16/ or fp16/ (e.g. bf16/sbp:0.5)";

    public static ModeSpec Full { get; } = new(TrainMode.Full, 1);

    /// <summary>Parses one mode; <paramref name="what"/> names where it came from (an option) in errors.</summary>
    public static ModeSpec Parse(string text, string what = "mode")
    {
        ArgumentNullException.ThrowIfNull(text);
        var t = text.Trim();
        if (SplitPrecision(t, what) is ({ } precision, var unprefixed)) return Parse(unprefixed, what) with { Precision = precision };
        foreach (var (name, mode) in new[] { ("sbp+checkpoint", TrainMode.Checkpoint), ("sbp", TrainMode.Sbp), ("checkpoint", TrainMode.Checkpoint), ("full", TrainMode.Full) })
        {
            if (!t.StartsWith(name, StringComparison.OrdinalIgnoreCase)) continue;
            var rest = t[name.Length..];
            bool sbp = name.StartsWith("sbp", StringComparison.Ordinal);
            if (rest.Length == 0)
            {
                if (sbp) throw new ArgumentException($"{what} '{text}' needs a keep ratio; use {Forms}.");
                return new(mode, 1);
            }
            if (!sbp || rest[0] is not (':' or '-')) break;
            return new(mode, ParseKeep(rest[1..], $"{what} '{text}'"));
        }
        throw new ArgumentException($"{what} '{text}' is not a mode; use {Forms}.");
    }

    /// <summary>A mode name (full, checkpoint, sbp, sbp+checkpoint) and a keep ratio given apart (`train --mode sbp --keep 0.5`).</summary>
    public static ModeSpec Of(string mode, string keep, string modeOption = "--mode", string keepOption = "--keep")
    {
        ArgumentNullException.ThrowIfNull(mode);
        var m = mode.Trim();
        if (m.Contains(':', StringComparison.Ordinal)) return Parse(m, modeOption);
        return m.ToLowerInvariant() switch
        {
            "full" => Full,
            "checkpoint" => new(TrainMode.Checkpoint, 1),
            "sbp" => new(TrainMode.Sbp, ParseKeep(keep, keepOption)),
            "sbp+checkpoint" => new(TrainMode.Checkpoint, ParseKeep(keep, keepOption)),
            _ => throw new ArgumentException($"{modeOption} '{mode}' is not a mode; use full, checkpoint, sbp or sbp+checkpoint (with --keep), or {Forms}."),
        };
    }

    /// <summary>A keep ratio: a number in (0, 1] or a fraction p/q; <paramref name="what"/> names the option or mode in errors.</summary>
    public static double ParseKeep(string text, string what = "--keep")
    {
        ArgumentNullException.ThrowIfNull(text);
        var t = text.Trim();
        double value = double.NaN;
        int slash = t.IndexOf('/', StringComparison.Ordinal);
        if (slash > 0)
        {
            if (double.TryParse(t[..slash], NumberStyles.Float, CultureInfo.InvariantCulture, out var p) &&
                double.TryParse(t[(slash + 1)..], NumberStyles.Float, CultureInfo.InvariantCulture, out var q) && q != 0)
                value = p / q;
        }
        else if (!double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out value)) value = double.NaN;
        if (!(value > 0 && value <= 1))
            throw new ArgumentException($"{what}: keep ratio '{text}' is not a number in (0, 1]; write it like 0.5, 0.25 or 1/4.");
        return value;
    }

    /// <summary>
    /// A precision leading a mode name, as "bf16/sbp:0.5" or "bf16-sbp-0.5" (fp32, bf16 or fp16): the precision and the rest;
    /// null and the text itself when none leads.
    /// </summary>
    public static (Sbp.Tensors.DType? Precision, string Remainder) SplitPrecision(string text, string what = "mode")
    {
        foreach (var name in new[] { "fp32", "bf16", "fp16" })
            if (text.Length > 5 && text.StartsWith(name, StringComparison.OrdinalIgnoreCase) && text[4] is '/' or '-')
                return (ParsePrecision(name, what), text[5..]);
        return (null, text);
    }

    /// <summary>A precision: fp32 (Float32), bf16 (BFloat16) or fp16 (Float16); <paramref name="what"/> names the option in errors.</summary>
    public static Sbp.Tensors.DType ParsePrecision(string text, string what = "--precision") => text.Trim().ToLowerInvariant() switch
    {
        "fp32" or "float32" => Sbp.Tensors.DType.Float32,
        "bf16" or "bfloat16" => Sbp.Tensors.DType.BFloat16,
        "fp16" or "float16" => Sbp.Tensors.DType.Float16,
        var other => throw new ArgumentException($"{what}: precision '{other}' is not fp32, bf16 or fp16."),
    };

    /// <summary>fp32, bf16 or fp16.</summary>
    public static string PrecisionName(Sbp.Tensors.DType precision) => precision switch
    {
        Sbp.Tensors.DType.BFloat16 => "bf16",
        Sbp.Tensors.DType.Float16 => "fp16",
        _ => "fp32",
    };

    /// <summary>The label of runs, files and tables: full, checkpoint, sbp-0.5, sbp+checkpoint-0.25; led by bf16- or fp16- under autocast.</summary>
    public string Label => (Precision is { } p && p != Sbp.Tensors.DType.Float32 ? PrecisionName(p) + "-" : "") + ModeLabel;

    string ModeLabel => Mode switch
    {
        TrainMode.Full => "full",
        TrainMode.Checkpoint when Keep < 1 => string.Create(CultureInfo.InvariantCulture, $"sbp+checkpoint-{Keep:0.###}"),
        TrainMode.Checkpoint => "checkpoint",
        _ => string.Create(CultureInfo.InvariantCulture, $"sbp-{Keep:0.###}"),
    };

    /// <summary>The mode's family: full, checkpoint or sbp.</summary>
    public string Name => Mode switch { TrainMode.Full => "full", TrainMode.Checkpoint => "checkpoint", _ => "sbp" };

    public override string ToString() => Label;
}
