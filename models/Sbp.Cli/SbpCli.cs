using System.CommandLine;
using System.Text.RegularExpressions;
using Sbp.Models.Data;

namespace Sbp.Cli;

/// <summary>
/// The `sbp` command tree (System.CommandLine). One file per command in models/Sbp.Cli/: each exposes
/// <c>static Command Create()</c> and is added to <see cref="Build"/>. Exit codes: 0 done; 2 a user
/// error (a malformed option, a missing or unreadable file, a folder that cannot be written, a
/// configuration the engine refuses, a command line that does not parse), printed as one line
/// "sbp COMMAND: message" that names the option or file, what is wrong and what to do; 70 an internal error (a bug: the message and the stack trace, to report); 130 interrupted (Ctrl-C).
/// </summary>
public static partial class SbpCli
{
    public const int ExitUserError = 2, ExitInternalError = 70, ExitInterrupted = 130;

    /// <summary>The exit codes as help and the README state them.</summary>
    public const string ExitCodes = "exit codes: 0 done, 2 bad input (the message names the option, value or file), 70 internal error (please report), 130 interrupted";

    public static RootCommand Build()
    {
        var root = new RootCommand($"sbp {Version}: train and compare video models with full backprop and Stochastic Backpropagation (SBP).\n{ExitCodes}");
        root.Add(DatasetsCommand.Create());
        root.Add(KernelsCommand.Create());
        root.Add(CompareCommand.Create());
        root.Add(TrainCommand.Create());
        root.Add(TrainCommand.CreateEval());
        root.Add(MemoryCommand.Create());
        root.Add(ConvertCommand.Create());
        // --version prints the engine's one version number (the default prints the entry assembly's, a test host's in-process).
        foreach (var option in root.Options.OfType<VersionOption>()) option.Action = new PrintVersion();
        return root;
    }

    sealed class PrintVersion : System.CommandLine.Invocation.SynchronousCommandLineAction
    {
        public override int Invoke(ParseResult parseResult)
        {
            parseResult.InvocationConfiguration.Output.WriteLine(Version);
            return 0;
        }
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
        if (parse.Errors.Count > 0 && !args.Any(a => a is "-h" or "--help" or "-?"))
        {
            // A command line that does not parse is bad input like any other: one line per problem, exit 2.
            var err = error ?? Console.Error;
            foreach (var e in parse.Errors) err.WriteLine($"{command}: {Friendly(e.Message, parse, args)}");
            err.WriteLine($"{command}: see `{command} --help` for the options and examples.");
            return ExitUserError;
        }
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
            or FfmpegMissingException or VideoReadException or Models.Training.TrainingException or Stochastic.SbpRegionException
            or Memory.DeviceOutOfMemoryException or Backends.Cuda.CudaUnavailableException or IO.CheckpointMismatchException
            or Models.Pretrained.PthFormatException or Nn.StateDictMismatchException or Distributed.DistributedMismatchException or Distributed.DistributedException;

    [GeneratedRegex(@"as expected type '(System\.)?(?<type>[A-Za-z0-9]+)(\?|`1\[\[?System\.(?<inner>[A-Za-z0-9]+)[^']*)?'")]
    private static partial Regex ExpectedType();

    [GeneratedRegex(@"^Unrecognized command or argument '(?<token>.*)'\.?$")]
    private static partial Regex Unrecognized();

    /// <summary>
    /// A parser message as the user should read it: no .NET type names ("as expected type 'System.Int32'"
    /// becomes "as a whole number"), and a word after a flag named as the flag's malformed value.
    /// </summary>
    static string Friendly(string message, ParseResult parse, string[] args)
    {
        if (Unrecognized().Match(message) is { Success: true } m)
        {
            int at = Array.IndexOf(args, m.Groups["token"].Value);
            if (at > 0 && parse.CommandResult.Command.Options.FirstOrDefault(o => o.Name == args[at - 1]) is Option<bool> flag)
                return $"{flag.Name} is a flag: give it alone (or {flag.Name} true/false), not '{args[at]}'.";
        }
        return ExpectedType().Replace(message, t => (t.Groups["inner"].Success ? t.Groups["inner"].Value : t.Groups["type"].Value) switch
        {
            "Int32" or "Int64" => "as a whole number",
            "UInt32" or "UInt64" => "as a whole number of 0 or more",
            "Single" or "Double" => "as a number",
            "Boolean" => "as true or false",
            var other => $"as a {other.ToLowerInvariant()}",
        });
    }

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
