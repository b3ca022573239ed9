using System.CommandLine;
using System.Text.RegularExpressions;
using Sbp.Models.Data;

namespace Sbp.Models.Cli;

/// <summary>
/// The `sbp` command tree (System.CommandLine). One file per command under models/Cli/: each exposes
/// <c>static Command Create()</c> and is added to <see cref="Build"/>. Exit codes: 0 done; 2 a user
/// error (a malformed option, a missing or unreadable file, a folder that cannot be written, a
/// configuration the engine refuses), printed as one line "sbp COMMAND: message" that names the
/// option or file, what is wrong and what to do; 1 a command line System.CommandLine could not parse;
/// 70 an internal error (a bug: the message and the stack trace, to report); 130 interrupted (Ctrl-C).
/// </summary>
public static partial class SbpCli
{
    public const int ExitUserError = 2, ExitInternalError = 70, ExitInterrupted = 130;

    /// <summary>The exit codes as help and the README state them.</summary>
    public const string ExitCodes = "exit codes: 0 done, 1 unparsable command line, 2 bad input (the message names the option or file), 70 internal error (please report), 130 interrupted";

    public static RootCommand Build()
    {
        var root = new RootCommand($"sbp {Version}: train and compare video models with full backprop and Stochastic Backpropagation (SBP).\n{ExitCodes}");
        root.Add(GlobalOptions.Device);
        root.Add(DatasetsCommand.Create());
        root.Add(KernelsCommand.Create());
        root.Add(CompareCommand.Create());
        root.Add(TrainCommand.Create());
        root.Add(TrainCommand.CreateEval());
        root.Add(MemoryCommand.Create());
        return root;
    }

    /// <summary>The program's version: one number, from the assembly (Directory.Build.props), everywhere it is shown.</summary>
    public static string Version => EngineInfo.Version;

    public static int Run(string[] args, TextWriter? output = null, TextWriter? error = null)
    {
        // Exceptions are reported here (one line, an exit code); Ctrl-C is the training commands' (Interrupt).
        var config = new InvocationConfiguration { EnableDefaultExceptionHandler = false, ProcessTerminationTimeout = null };
        if (output is not null) config.Output = output;
        if (error is not null) config.Error = error;
        var parse = Build().Parse(args);
        string command = CommandPath(parse.CommandResult);
        try
        {
            return parse.Invoke(config);
        }
        catch (Exception e)
        {
            return Report(e, command, error ?? Console.Error);
        }
    }

    /// <summary>"sbp train", "sbp datasets make": the command a message comes from.</summary>
    static string CommandPath(System.CommandLine.Parsing.CommandResult? r)
    {
        var names = new List<string>();
        for (var c = r; c is not null; c = c.Parent as System.CommandLine.Parsing.CommandResult)
            names.Add(c.Command is RootCommand ? "sbp" : c.Command.Name);
        names.Reverse();
        return names.Count == 0 ? "sbp" : string.Join(' ', names);
    }

    /// <summary>Prints an exception as the user should see it and returns the exit code.</summary>
    internal static int Report(Exception e, string command, TextWriter error)
    {
        // A data worker's or a wrapped failure: report what failed, not what carried it.
        while (e is BackgroundWorkException or AggregateException { InnerExceptions.Count: 1 } && e.InnerException is { } inner) e = inner;
        if (e is OperationCanceledException)
        {
            error.WriteLine($"{command}: interrupted.");
            return ExitInterrupted;
        }
        if (!IsUserError(e))
        {
            error.WriteLine($"{command}: internal error ({e.GetType().Name}): {e.Message}");
            error.WriteLine("This is a bug in sbp, not in what you asked; please report it with the lines below.");
            error.WriteLine(e.ToString());
            return ExitInternalError;
        }
        error.WriteLine($"{command}: {UserMessage(e, command)}");
        return ExitUserError;
    }

    static bool IsUserError(Exception e) =>
        e is ArgumentException or FormatException or IOException or UnauthorizedAccessException or InvalidDataException
            or FfmpegMissingException or VideoReadException or Training.TrainingException or Stochastic.SbpRegionException
            or Memory.DeviceOutOfMemoryException or Backends.Cuda.CudaUnavailableException or IO.CheckpointMismatchException;

    [GeneratedRegex(@" \(Parameter '[^']*'\)$")]
    private static partial Regex ParameterSuffix();

    /// <summary>The message without .NET's parameter suffix and without a command prefix the caller adds anyway.</summary>
    internal static string UserMessage(Exception e, string command)
    {
        var m = ParameterSuffix().Replace(e.Message.Trim(), "");
        foreach (var prefix in new[] { command + ": ", "sbp: ", "sbp " + command + ": " })
            if (m.StartsWith(prefix, StringComparison.Ordinal)) m = m[prefix.Length..];
        return m;
    }
}
