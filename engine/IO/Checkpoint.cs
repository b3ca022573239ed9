using System.Globalization;
using Sbp.Optim;
using Sbp.Rng;
using Sbp.Tensors;

namespace Sbp.IO;

/// <summary>
/// What a checkpoint holds besides tensors: the training step, the schedule position, named random
/// sources (their Seed and Position) and free-form string metadata.
/// </summary>
public sealed record CheckpointInfo(long Step, long SchedulePosition,
    IReadOnlyDictionary<string, RandomSource> RandomSources, IReadOnlyDictionary<string, string> Extra)
{
    public CheckpointInfo(long step, long schedulePosition, IReadOnlyDictionary<string, RandomSource>? randomSources = null)
        : this(step, schedulePosition, randomSources ?? new Dictionary<string, RandomSource>(), new Dictionary<string, string>()) { }
}

/// <summary>A checkpoint that does not fit the receiving model or optimizer; lists every problem (nothing was loaded).</summary>
public sealed class CheckpointMismatchException(string path, IReadOnlyList<string> problems)
    : Exception($"checkpoint '{path}' does not fit ({problems.Count} problem{(problems.Count == 1 ? "" : "s")}; nothing was loaded):\n  " + string.Join("\n  ", problems))
{
    public IReadOnlyList<string> Problems { get; } = problems;
}

/// <summary>
/// Training checkpoints as ONE safetensors file, readable by any safetensors reader:
/// tensors "model.&lt;name&gt;" (the model's state dict) and "optim.&lt;name&gt;" (optimizer state such as
/// "optim.exp_avg.&lt;param&gt;"); metadata (strings) "format" = "sbp.checkpoint", "format_version",
/// "step", "schedule_position", "optim.type", "optim.scalar.&lt;name&gt;" (round-trip "R" doubles),
/// "rng.&lt;name&gt;.seed" / "rng.&lt;name&gt;.position", "extra.&lt;key&gt;", and the data checksum.
/// Saving writes a temporary file in the same folder, flushes it to disk and renames it over the
/// target, so a crash never leaves a half-written checkpoint.
/// </summary>
public static class Checkpoint
{
    public const string Format = "sbp.checkpoint";
    public const int FormatVersion = 1;

    /// <summary>
    /// Saves the model's named tensors (e.g. Module.StateDict()), the optimizer's state (if any) and
    /// <paramref name="info"/> atomically to <paramref name="path"/>.
    /// </summary>
    public static void Save(string path, IReadOnlyDictionary<string, Tensor> model, Optimizer? optimizer, CheckpointInfo info) =>
        Save(path, model.Select(kv => SafeTensorsEntry.FromTensor("model." + kv.Key, kv.Value)), optimizer, info);

    /// <summary>As the other overload, with the model's entries given as tensor sources (already named "model.*").</summary>
    public static void Save(string path, IEnumerable<SafeTensorsEntry> modelEntries, Optimizer? optimizer, CheckpointInfo info)
    {
        var entries = modelEntries.ToList();
        foreach (var e in entries)
            if (!e.Name.StartsWith("model.", StringComparison.Ordinal))
                throw new ArgumentException($"Checkpoint.Save: model entry '{e.Name}' must be named 'model.<name>'.");
        var meta = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["format"] = Format,
            ["format_version"] = FormatVersion.ToString(CultureInfo.InvariantCulture),
            ["step"] = info.Step.ToString(CultureInfo.InvariantCulture),
            ["schedule_position"] = info.SchedulePosition.ToString(CultureInfo.InvariantCulture),
        };
        if (optimizer is not null)
        {
            var state = optimizer.StateDict();
            meta["optim.type"] = optimizer.GetType().Name;
            foreach (var (k, v) in state.Scalars) meta["optim.scalar." + k] = v.ToString("R", CultureInfo.InvariantCulture);
            foreach (var (k, t) in state.Tensors) entries.Add(SafeTensorsEntry.FromTensor("optim." + k, t));
        }
        foreach (var (name, rng) in info.RandomSources)
        {
            meta[$"rng.{name}.seed"] = rng.Seed.ToString(CultureInfo.InvariantCulture);
            meta[$"rng.{name}.position"] = rng.Position.ToString(CultureInfo.InvariantCulture);
        }
        foreach (var (k, v) in info.Extra) meta["extra." + k] = v;
        SafeTensors.Save(path, entries, meta);
    }

    /// <summary>
    /// Loads a checkpoint into the model's tensors (copied in place: pass the receiving model's
    /// state dict) and the optimizer (if not null), after checking names, shapes and dtypes of
    /// both against the file and reporting every mismatch at once (<see cref="CheckpointMismatchException"/>;
    /// then nothing is loaded). Corrupted or truncated files throw <see cref="InvalidDataException"/>.
    /// Returns the step, schedule position, fresh <see cref="RandomSource"/>s in their saved state, and extras.
    /// With <paramref name="strict"/> false, model tensors missing from the file or extra in it are allowed.
    /// </summary>
    public static CheckpointInfo Load(string path, IReadOnlyDictionary<string, Tensor> model, Optimizer? optimizer, bool strict = true)
    {
        var file = SafeTensors.Load(path, requireChecksum: true);
        var meta = file.Metadata;
        var problems = new List<string>();
        if (!meta.TryGetValue("format", out var format) || format != Format)
            throw SafeTensors.Bad(path, $"metadata 'format' is '{format ?? "(missing)"}', not '{Format}': not an engine checkpoint");
        if (!meta.TryGetValue("format_version", out var ver) || ver != FormatVersion.ToString(CultureInfo.InvariantCulture))
            throw SafeTensors.Bad(path, $"checkpoint format_version '{ver ?? "(missing)"}' is not supported (this engine reads {FormatVersion})");
        long step = ParseLong(path, meta, "step");
        long position = ParseLong(path, meta, "schedule_position");

        // Model.
        foreach (var (name, t) in model)
        {
            string key = "model." + name;
            if (!file.Contains(key)) { if (strict) problems.Add($"model tensor '{name}' {t.DType} {t.Shape} is missing from the checkpoint"); continue; }
            var info = file.Info(key);
            if (info.Shape != t.Shape || info.DType != t.DType)
                problems.Add($"model tensor '{name}': checkpoint has {info.DType} {info.Shape}, the model has {t.DType} {t.Shape}");
        }
        if (strict)
            foreach (var info in file.Tensors)
                if (info.Name.StartsWith("model.", StringComparison.Ordinal) && !model.ContainsKey(info.Name[6..]))
                    problems.Add($"checkpoint tensor '{info.Name}' ({info.DType} {info.Shape}) is not in the model");

        // Optimizer.
        Dictionary<string, double>? scalars = null;
        if (optimizer is not null)
        {
            if (!meta.TryGetValue("optim.type", out var type))
                problems.Add("the checkpoint has no optimizer state (metadata 'optim.type' is missing)");
            else
            {
                if (type != optimizer.GetType().Name)
                    problems.Add($"optimizer: the checkpoint holds {type} state, the receiving optimizer is {optimizer.GetType().Name}");
                scalars = new Dictionary<string, double>(StringComparer.Ordinal);
                foreach (var (k, v) in meta)
                {
                    if (!k.StartsWith("optim.scalar.", StringComparison.Ordinal)) continue;
                    if (double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out double d)) scalars[k["optim.scalar.".Length..]] = d;
                    else problems.Add($"optimizer scalar '{k}' = '{v}' is not a number");
                }
                var tensors = file.Tensors.Where(i => i.Name.StartsWith("optim.", StringComparison.Ordinal))
                    .Select(i => (i.Name[6..], i.Shape, i.DType));
                problems.AddRange(optimizer.CheckStateDict(tensors, scalars).Select(p => "optimizer: " + p));
            }
        }

        // Random sources.
        var rngs = new Dictionary<string, RandomSource>(StringComparer.Ordinal);
        foreach (var (k, v) in meta)
        {
            if (!k.StartsWith("rng.", StringComparison.Ordinal) || !k.EndsWith(".seed", StringComparison.Ordinal)) continue;
            string name = k[4..^5];
            if (!ulong.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out ulong seed) ||
                !meta.TryGetValue($"rng.{name}.position", out var p) ||
                !ulong.TryParse(p, NumberStyles.None, CultureInfo.InvariantCulture, out ulong pos))
                throw SafeTensors.Bad(path, $"random source '{name}' has an invalid or missing seed/position in the metadata");
            rngs[name] = new RandomSource(seed, pos);
        }
        if (problems.Count > 0) throw new CheckpointMismatchException(path, problems);

        // Everything fits: copy.
        foreach (var (name, t) in model)
            if (file.Contains("model." + name)) file.CopyTo("model." + name, t);
        if (optimizer is not null && scalars is not null)
        {
            var device = optimizer.ParamGroups.SelectMany(g => g.Parameters).Select(p => p.Tensor.Device).FirstOrDefault() ?? Device.Default;
            var loaded = new Dictionary<string, Tensor>(StringComparer.Ordinal);
            try
            {
                foreach (var info in file.Tensors)
                    if (info.Name.StartsWith("optim.", StringComparison.Ordinal))
                        loaded[info.Name[6..]] = file.ToTensor(info.Name, device).DetachFromScope();
                optimizer.LoadStateDict(new OptimizerState(loaded, scalars));
            }
            finally
            {
                foreach (var t in loaded.Values) t.Dispose();
            }
        }
        var extra = meta.Where(kv => kv.Key.StartsWith("extra.", StringComparison.Ordinal))
            .ToDictionary(kv => kv.Key[6..], kv => kv.Value, StringComparer.Ordinal);
        return new CheckpointInfo(step, position, rngs, extra);
    }

    static long ParseLong(string path, IReadOnlyDictionary<string, string> meta, string key) =>
        meta.TryGetValue(key, out var v) && long.TryParse(v, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long r)
            ? r : throw SafeTensors.Bad(path, $"metadata '{key}' is missing or not an integer");
}
