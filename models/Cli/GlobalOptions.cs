using System.CommandLine;

namespace Sbp.Models.Cli;

/// <summary>Options every command sees (declared once on the root, recursive).</summary>
public static class GlobalOptions
{
    /// <summary>Where to run: cpu, cuda or auto. Declared here; choosing the device is the training commands' job.</summary>
    public static readonly Option<string> Device = new("--device")
    {
        Description = "compute device: cpu, cuda (the first GPU), cuda:N or auto (a GPU when there is one, else the CPU)",
        DefaultValueFactory = _ => "auto",
        Recursive = true,
    };

    static GlobalOptions() => Device.Validators.Add(r =>
    {
        var v = r.GetValueOrDefault<string>()?.Trim().ToLowerInvariant() ?? "";
        bool ok = v is "cpu" or "cuda" or "auto" || (v.StartsWith("cuda:", StringComparison.Ordinal) && int.TryParse(v.AsSpan(5), out int n) && n >= 0);
        if (!ok) r.AddError($"--device '{v}' is not a device; use cpu, cuda, cuda:N (N = 0, 1, ...) or auto.");
    });
}
