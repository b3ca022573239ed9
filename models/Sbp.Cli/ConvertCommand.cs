using System.CommandLine;
using Sbp.IO;
using Sbp.Models.Pretrained;
using Sbp.Tensors;

namespace Sbp.Cli;

/// <summary>
/// `sbp convert PATH --out FILE`: a PyTorch checkpoint (.pth, read without executing anything) to a safetensors file
/// with the same names, in float32, written atomically; what was found is printed (tensors, dtypes, where the state
/// dict was, entries that are not tensors).
/// </summary>
public static class ConvertCommand
{
    public static Command Create()
    {
        var path = new Argument<string>("path") { Description = "a PyTorch checkpoint written by torch.save (zip or legacy format)" };
        var output = new Option<string>("--out") { Description = "the safetensors file to write", Required = true };
        var force = new Option<bool>("--force") { Description = "replace --out when it exists" };
        var cmd = new Command("convert", "convert a PyTorch checkpoint (.pth) to safetensors without running any of its code: only the tensors of its " +
            "state dict are read (official names kept, float32); a file that needs anything else is refused, naming what" + TrainCommand.Examples(
            "sbp convert swin_tiny_patch244_window877_kinetics400_1k.pth --out swin-t-k400.safetensors",
            "sbp train --model swin-t --init swin-t-k400.safetensors --reset-head --data my-list.txt"))
        {
            path, output, force,
        };
        cmd.SetAction(r => Convert(r.GetValue(path)!, r.GetValue(output)!, r.GetValue(force), r.InvocationConfiguration.Output));
        return cmd;
    }

    public static int Convert(string path, string output, bool force, TextWriter log)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: no such file.", path);
        if (File.Exists(output) && !force) throw new IOException($"--out {output} exists; give --force to replace it.");
        var ckpt = TorchCheckpoint.Load(path);
        var entries = ckpt.Tensors.Select(kv => SafeTensorsEntry.FromArray(kv.Key, kv.Value.Values, new Shape(kv.Value.Shape)));
        var metadata = new Dictionary<string, string>
        {
            ["sbp.converted_from"] = Path.GetFileName(path),
            ["sbp.pth_format"] = ckpt.Format,
            ["sbp.pth_location"] = ckpt.Location,
        };
        SafeTensors.Save(output, entries, metadata);
        long values = ckpt.Tensors.Values.Sum(t => (long)t.Values.Length);
        var dtypes = ckpt.DTypes.Values.GroupBy(d => d).OrderBy(g => g.Key, StringComparer.Ordinal).Select(g => $"{g.Count()} {g.Key}");
        log.WriteLine($"{path} ({ckpt.Format} format, state dict at {(ckpt.Location.Length == 0 ? "the top level" : $"'{ckpt.Location}'")}): " +
            $"{ckpt.Tensors.Count} tensors ({string.Join(", ", dtypes)}), {values:N0} values -> {output} (float32)");
        if (ckpt.Skipped.Count > 0) log.WriteLine($"not tensors, left out: {string.Join(", ", ckpt.Skipped.Take(10))}{(ckpt.Skipped.Count > 10 ? ", ..." : "")}");
        return 0;
    }
}
