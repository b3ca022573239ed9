using System.CommandLine;
using Sbp.Models.Data;

namespace Sbp.Models.Cli;

/// <summary>
/// The `sbp` command tree (System.CommandLine). One file per command under models/Cli/: each exposes
/// <c>static Command Create()</c> and is added to <see cref="Build"/>. Expected user errors
/// (bad arguments, bad data files, missing ffmpeg) print "sbp: message" and exit 2.
/// </summary>
public static class SbpCli
{
    public static RootCommand Build()
    {
        var root = new RootCommand("sbp: train and compare video models with full backprop and Stochastic Backpropagation (SBP).");
        root.Add(GlobalOptions.Device);
        root.Add(DatasetsCommand.Create());
        root.Add(KernelsCommand.Create());
        root.Add(CompareCommand.Create());
        root.Add(TrainCommand.Create());
        root.Add(TrainCommand.CreateEval());
        root.Add(MemoryCommand.Create());
        return root;
    }

    public static int Run(string[] args, TextWriter? output = null, TextWriter? error = null)
    {
        var config = new InvocationConfiguration { EnableDefaultExceptionHandler = false };
        if (output is not null) config.Output = output;
        if (error is not null) config.Error = error;
        try
        {
            return Build().Parse(args).Invoke(config);
        }
        catch (Exception e) when (IsUserError(e))
        {
            // a data worker's failure: report what failed, not the queue that carried it
            if (e is BackgroundWorkException { InnerException: { } inner } && IsUserError(inner)) e = inner;
            (error ?? Console.Error).WriteLine(e.Message.StartsWith("sbp", StringComparison.Ordinal) ? e.Message : $"sbp: {e.Message}");
            return 2;
        }
    }

    static bool IsUserError(Exception e) =>
        e is ArgumentException or FormatException or FileNotFoundException or DirectoryNotFoundException
            or FfmpegMissingException or VideoReadException or BackgroundWorkException or IOException
            or Training.TrainingException or Stochastic.SbpRegionException or Memory.DeviceOutOfMemoryException
            or Backends.Cuda.CudaUnavailableException or IO.CheckpointMismatchException;
}
