using System.CommandLine;
using System.Globalization;
using Sbp.Models.Data;

namespace Sbp.Cli;

/// <summary>
/// How clips become model input, shared by train, eval, compare and `datasets show`: the short side video
/// files are decoded at, the training crop, flips and the normalisation. Unset values take the dataset
/// kind's defaults (<see cref="DatasetCatalog.Recipe"/>); each value is parsed and checked here, once.
/// </summary>
public sealed class InputOptions
{
    public readonly Option<int?> ShortSide = new("--short-side") { Description = "video files and frame folders: decode with this shorter side, 0 = native (default: 8/7 of --size, e.g. 128 for 112, 256 for 224)" };
    public readonly Option<string?> Crop = new("--crop") { Description = "training crop: random[:MIN_AREA] (random resized crop of at least MIN_AREA of the frame, default 0.08) or center; evaluation always takes the centre (default: random for files, center for synthetic data)" };
    public readonly Option<string?> Flip = new("--flip") { Description = "horizontal flips in training: on or off (default: on for files, off for synthetic data; synthetic-actions relabels flipped clips: right and left, clockwise and counter-clockwise swap)" };
    public readonly Option<string?> Reverse = new("--reverse") { Description = "time reversal in training, probability 0.5: on or off (default off; synthetic-actions only, which relabels a reversed clip with its reverse partner: right and left, clockwise and counter-clockwise, approach and recede swap)" };
    public readonly Option<string?> Mean = new("--mean") { Description = "normalisation mean per channel R,G,B on a 0..1 scale (default 0.45,0.45,0.45)" };
    public readonly Option<string?> Std = new("--std") { Description = "normalisation std per channel R,G,B (default 0.225,0.225,0.225)" };

    public Option[] All => [ShortSide, Crop, Flip, Reverse, Mean, Std];

    /// <summary><paramref name="spec"/> with the input settings given on the command line.</summary>
    public DatasetSpec Apply(ParseResult r, DatasetSpec spec)
    {
        if (r.GetValue(ShortSide) is < 0) throw new ArgumentException($"{ShortSide.Name} {r.GetValue(ShortSide)}: must be 0 (native) or more.");
        return spec with
        {
            ShortSide = r.GetValue(ShortSide),
            MinCropArea = r.GetValue(Crop) is { } c ? ParseCrop(c) : null,
            Flip = OnOff(r, Flip),
            Reverse = OnOff(r, Reverse),
            Mean = r.GetValue(Mean) is { } m ? ParseTriple(Mean.Name, m) : null,
            Std = r.GetValue(Std) is { } s ? ParseTriple(Std.Name, s) : null,
        };
    }

    /// <summary>The option that sets a recipe field (for a dataset's own error), or null when the field is not one of these.</summary>
    public string? NameOf(DataField field) => field switch
    {
        DataField.ShortSide => ShortSide.Name,
        DataField.Crop => Crop.Name,
        DataField.Flip => Flip.Name,
        DataField.Reverse => Reverse.Name,
        DataField.Normalize => $"{Mean.Name}/{Std.Name}",
        _ => null,
    };

    static bool? OnOff(ParseResult r, Option<string?> option) => r.GetValue(option)?.Trim().ToLowerInvariant() switch
    {
        null => null,
        "on" or "true" or "yes" => true,
        "off" or "false" or "no" => false,
        var other => throw new ArgumentException($"{option.Name} '{other}': use on or off."),
    };

    /// <summary>--crop: random (area 0.08..1), random:MIN or center (1).</summary>
    public static float ParseCrop(string text)
    {
        var t = text.Trim().ToLowerInvariant();
        if (t is "center" or "centre") return 1f;
        if (t == "random") return 0.08f;
        if (t.StartsWith("random:", StringComparison.Ordinal) &&
            float.TryParse(t.AsSpan(7), NumberStyles.Float, CultureInfo.InvariantCulture, out float min) && min > 0f && min <= 1f)
            return min;
        throw new ArgumentException($"--crop '{text}': use random, random:MIN_AREA with MIN_AREA in (0, 1] (e.g. random:0.25) or center.");
    }

    static float[] ParseTriple(string option, string text)
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries);
        var values = new float[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!float.TryParse(parts[i], NumberStyles.Float, CultureInfo.InvariantCulture, out values[i]) || !float.IsFinite(values[i]))
                throw new ArgumentException($"{option} '{text}': '{parts[i]}' is not a number; give R,G,B on a 0..1 scale, e.g. 0.45,0.45,0.45.");
        if (values.Length != 3) throw new ArgumentException($"{option} '{text}': give 3 values R,G,B (got {values.Length}).");
        if (option == "--std" && values.Any(v => v <= 0f)) throw new ArgumentException($"{option} '{text}': every std must be above 0.");
        return values;
    }
}
