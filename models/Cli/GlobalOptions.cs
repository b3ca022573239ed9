using System.CommandLine;

namespace Sbp.Models.Cli;

/// <summary>Options every command sees (declared once on the root, recursive).</summary>
public static class GlobalOptions
{
    /// <summary>Where to run: cpu, cuda or auto. Declared here; choosing the device is the training commands' job.</summary>
    public static readonly Option<string> Device = new("--device")
    {
        Description = "compute device: cpu, cuda or auto",
        DefaultValueFactory = _ => "auto",
        Recursive = true,
    };

    static GlobalOptions() => Device.AcceptOnlyFromAmong("cpu", "cuda", "auto");
}
